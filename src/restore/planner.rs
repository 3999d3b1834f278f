//! The walk over a snapshot's trees that plans a restore: what to make below the target,
//! in walk order. It reads trees and nothing else; the skeleton is made from its plan.

use std::collections::hash_map::{Entry as Slot, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::plan::{DirPlan, Entry, FilePlan, Make, Start, TreePlan};
use crate::error::{Error, Result};
use crate::repo::id::BlobId;
use crate::repo::tree::{Node, NodeKind, Tree};
use crate::safe_fs;

/// Plans the restore of `start`, reading each tree with `tree`, depth first with a stack of
/// its own rather than the call stack: trees may be thousands of levels deep. A name that
/// could leave its directory is refused here, before anything is made.
pub(super) fn plan(
    start: Start,
    mut tree: impl FnMut(&BlobId) -> Result<Tree>,
    interrupt: &AtomicBool,
) -> Result<TreePlan> {
    let mut planner = Planner::default();
    let (base, nodes) = match start {
        Start::Tree(id, top) => {
            if let Some(node) = top {
                planner.plan.dirs.push(DirPlan {
                    rel: PathBuf::new(),
                    node,
                    created: false,
                });
            }
            (PathBuf::new(), tree(&id)?.nodes)
        }
        // Keep the path's place in the tree, as restic does: DIR/a/b for `--path a/b`.
        Start::Node(comps, node) => (comps[..comps.len() - 1].iter().collect(), vec![node]),
    };
    planner.plan.base = base.clone();
    let mut stack = vec![(base, nodes.into_iter())];
    while let Some((dir, nodes)) = stack.last_mut() {
        if interrupt.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let Some(node) = nodes.next() else {
            stack.pop();
            continue;
        };
        let name = node.os_name();
        if !safe_fs::is_plain_name(&name) {
            return Err(Error::Damage(format!(
                "a tree holds an unsafe name {:?}",
                name
            )));
        }
        let rel = dir.join(&name);
        if let Some((rel, sub)) = planner.add(rel, node) {
            stack.push((rel, tree(&sub)?.nodes.into_iter()));
        }
    }
    Ok(planner.plan)
}

/// The plan being built.
#[derive(Default)]
struct Planner {
    plan: TreePlan,
    /// The first path of each inode with more than one link.
    inodes: HashMap<(u64, u64), PathBuf>,
}

impl Planner {
    /// Plans one entry; for a directory with entries, returns its path and tree to walk.
    fn add(&mut self, rel: PathBuf, node: Node) -> Option<(PathBuf, BlobId)> {
        let plan = &mut self.plan;
        let make = match node.kind {
            NodeKind::Dir => {
                plan.summary.dirs += 1;
                let sub = node.subtree.map(|t| (rel.clone(), t));
                plan.dirs.push(DirPlan {
                    rel,
                    node,
                    created: false,
                });
                return sub;
            }
            NodeKind::File => self.file(&rel, node),
            NodeKind::Symlink => {
                plan.summary.others += 1;
                Make::Symlink(node)
            }
            NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice => {
                plan.summary.others += 1;
                Make::Special(node)
            }
            NodeKind::Socket => Make::Nothing,
        };
        self.plan.entries.push(Entry { rel, make });
        None
    }

    /// A regular file: the second and later links to an inode become hard links, an empty
    /// file is made with the skeleton, any other is filled from the packs.
    fn file(&mut self, rel: &std::path::Path, node: Node) -> Make {
        let plan = &mut self.plan;
        if node.links > 1 {
            match self.inodes.entry((node.dev, node.inode)) {
                Slot::Occupied(first) => {
                    plan.links.push((rel.to_path_buf(), first.get().clone()));
                    return Make::Nothing;
                }
                Slot::Vacant(slot) => {
                    slot.insert(rel.to_path_buf());
                }
            }
        }
        if node.content.is_empty() {
            plan.summary.files += 1;
            return Make::EmptyFile(node);
        }
        plan.files.push(FilePlan {
            rel: rel.to_path_buf(),
            remaining: AtomicUsize::new(node.content.len()),
            failed: AtomicBool::new(false),
            node,
        });
        Make::Nothing
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::ffi::{OsStr, OsString};
    use std::path::Path;

    use super::*;

    pub(in super::super) fn id(n: u8) -> BlobId {
        BlobId([n; 32])
    }

    pub(in super::super) fn node(kind: NodeKind, name: &str) -> Node {
        let mut n = Node::new(kind, OsStr::new(name));
        n.mode = if kind == NodeKind::Dir { 0o755 } else { 0o644 };
        n
    }

    fn file(name: &str, chunks: u8, inode: u64, links: u64) -> Node {
        let mut n = node(NodeKind::File, name);
        n.content = (0..chunks).map(|c| id(100 + c)).collect();
        n.size = chunks as u64;
        (n.dev, n.inode, n.links) = (1, inode, links);
        n
    }

    pub(in super::super) fn dir(name: &str, tree: u8) -> Node {
        let mut n = node(NodeKind::Dir, name);
        n.subtree = Some(id(tree));
        n
    }

    /// root: a/ (b/ (c), f), ln -> a, pipe, sock, z (a hard link to a/f); c is empty.
    pub(in super::super) fn small_tree() -> HashMap<BlobId, Tree> {
        let mut ln = node(NodeKind::Symlink, "ln");
        ln.set_target(OsStr::new("a"));
        let trees = [
            (
                1,
                vec![
                    dir("a", 2),
                    ln,
                    node(NodeKind::Fifo, "pipe"),
                    node(NodeKind::Socket, "sock"),
                    file("z", 2, 7, 2),
                ],
            ),
            (2, vec![dir("b", 3), file("f", 2, 7, 2)]),
            (3, vec![file("c", 0, 8, 1)]),
        ];
        trees
            .into_iter()
            .map(|(i, nodes)| (id(i), Tree { nodes }))
            .collect()
    }

    pub(in super::super) fn plan_of(trees: &HashMap<BlobId, Tree>, start: Start) -> TreePlan {
        let read = |t: &BlobId| Ok(trees[t].clone());
        plan(start, read, &AtomicBool::new(false)).unwrap()
    }

    fn paths<'a>(it: impl Iterator<Item = &'a PathBuf>) -> Vec<&'a str> {
        it.map(|p| p.to_str().unwrap()).collect()
    }

    #[test]
    fn a_plan_lists_the_entries_in_walk_order_and_makes_nothing() {
        let target = tempfile::tempdir().unwrap();
        let plan = plan_of(&small_tree(), Start::Tree(id(1), None));
        assert_eq!(plan.base, Path::new(""));
        assert_eq!(paths(plan.dirs.iter().map(|d| &d.rel)), ["a", "a/b"]);
        let kinds: Vec<(&str, &str)> = plan
            .entries
            .iter()
            .map(|e| {
                let what = match &e.make {
                    Make::Symlink(_) => "symlink",
                    Make::Special(_) => "special",
                    Make::EmptyFile(_) => "empty",
                    Make::Nothing => "later",
                };
                (e.rel.to_str().unwrap(), what)
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("a/b/c", "empty"),
                ("a/f", "later"),
                ("ln", "symlink"),
                ("pipe", "special"),
                ("sock", "later"),
                ("z", "later"),
            ]
        );
        assert_eq!(paths(plan.files.iter().map(|f| &f.rel)), ["a/f"]);
        assert_eq!(plan.links, [(PathBuf::from("z"), PathBuf::from("a/f"))]);
        let s = &plan.summary;
        assert_eq!((s.dirs, s.files, s.others), (2, 1, 2));
        assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_path_keeps_its_place_and_a_directory_restored_whole_comes_first() {
        let trees = small_tree();
        let plan = plan_of(
            &trees,
            Start::Node(vec!["a".into(), "b".into()], dir("b", 3)),
        );
        assert_eq!(plan.base, Path::new("a"));
        assert_eq!(paths(plan.dirs.iter().map(|d| &d.rel)), ["a/b"]);
        assert_eq!(paths(plan.entries.iter().map(|e| &e.rel)), ["a/b/c"]);

        let plan = plan_of(&trees, Start::Tree(id(3), Some(dir("b", 3))));
        assert_eq!(paths(plan.dirs.iter().map(|d| &d.rel)), [""]);
        assert_eq!(plan.summary.dirs, 0);
    }

    #[test]
    fn an_unsafe_name_is_refused_when_planning() {
        for bad in ["..", ".", "a/b", ""] {
            let mut trees = small_tree();
            let name = OsString::from(bad);
            trees.get_mut(&id(3)).unwrap().nodes[0].set_name(&name);
            let read = |t: &BlobId| Ok(trees[t].clone());
            let err = plan(Start::Tree(id(1), None), read, &AtomicBool::new(false))
                .err()
                .unwrap();
            assert!(matches!(err, Error::Damage(_)), "{bad}: {err:?}");
            assert_eq!(
                err.to_string(),
                format!("a tree holds an unsafe name {name:?}"),
                "{bad}"
            );
        }
    }
}
