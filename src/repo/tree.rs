//! Directory trees: one blob per directory listing its entries, sorted by name.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use serde::{Deserialize, Serialize};

use super::id::BlobId;

/// What a tree entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// Regular file.
    File,
    /// Directory with a subtree.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Named pipe.
    Fifo,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// Unix socket (recorded, not restored).
    Socket,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One entry of a directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The name when it is UTF-8; otherwise a lossy rendering and `name_raw` holds the bytes.
    pub name: String,
    /// Hex of the raw name, only for names that are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_raw: Option<String>,
    /// File, directory, link...
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// Permission bits (and setuid/setgid/sticky).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// File size.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// File contents, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<BlobId>,
    /// The directory's own tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<BlobId>,
    /// Symlink target (hex in `target_raw` when not UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Hex of a symlink target that is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_raw: Option<String>,
    /// Device of the file at backup time: with `inode`, identifies hard links.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dev: u64,
    /// Inode at backup time.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inode: u64,
    /// Link count at backup time; above 1, `dev`/`inode` group the hard links.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub links: u64,
    /// Device number of device files.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rdev: u64,
    /// Holes of a sparse file as `[offset, length]`, in order: `content` holds only the
    /// bytes between them, and a restore leaves them unwritten.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holes: Vec<[u64; 2]>,
    /// Extended attributes (POSIX ACLs among them), sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
}

/// One extended attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    /// Its name when UTF-8 (they practically always are); else lossy, with `name_raw`.
    pub name: String,
    /// Hex of a name that is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_raw: Option<String>,
    /// Hex of the value.
    pub value: String,
}

impl Xattr {
    /// An attribute from its raw name and value.
    pub fn new(name: &OsStr, value: &[u8]) -> Self {
        let (name, name_raw) = encode_os(name);
        Xattr {
            name,
            name_raw,
            value: hex::encode(value),
        }
    }

    /// The exact name.
    pub fn os_name(&self) -> OsString {
        decode_os(&self.name, &self.name_raw)
    }

    /// The value's bytes (empty if the tree holds bad hex).
    pub fn value_bytes(&self) -> Vec<u8> {
        hex::decode(&self.value).unwrap_or_default()
    }
}

/// Splits an OS string into the tree's UTF-8 form plus the raw hex when needed.
fn encode_os(s: &OsStr) -> (String, Option<String>) {
    match s.to_str() {
        Some(u) => (u.to_string(), None),
        None => (
            s.to_string_lossy().into_owned(),
            Some(hex::encode(s.as_bytes())),
        ),
    }
}

fn decode_os(text: &str, raw: &Option<String>) -> OsString {
    match raw.as_deref().and_then(|h| hex::decode(h).ok()) {
        Some(bytes) => OsString::from_vec(bytes),
        None => OsString::from(text),
    }
}

impl Node {
    /// Sets the name from a file name.
    pub fn set_name(&mut self, name: &OsStr) {
        (self.name, self.name_raw) = encode_os(name);
    }

    /// The exact file name.
    pub fn os_name(&self) -> OsString {
        decode_os(&self.name, &self.name_raw)
    }

    /// Sets a symlink target.
    pub fn set_target(&mut self, target: &OsStr) {
        let (t, raw) = encode_os(target);
        self.target = Some(t);
        self.target_raw = raw;
    }

    /// The exact symlink target.
    pub fn os_target(&self) -> Option<OsString> {
        self.target.as_ref().map(|t| decode_os(t, &self.target_raw))
    }

    /// A node with the given kind and name and every other field empty.
    pub fn new(kind: NodeKind, name: &OsStr) -> Self {
        let (name, name_raw) = encode_os(name);
        Node {
            name,
            name_raw,
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            mtime_ns: 0,
            size: 0,
            content: Vec::new(),
            subtree: None,
            target: None,
            target_raw: None,
            dev: 0,
            inode: 0,
            links: 0,
            rdev: 0,
            holes: Vec::new(),
            xattrs: Vec::new(),
        }
    }

    /// Bytes of data in `content`: the size less the holes.
    pub fn data_len(&self) -> u64 {
        self.size
            .saturating_sub(self.holes.iter().map(|h| h[1]).sum::<u64>())
    }

    /// Where `len` bytes of content starting at content offset `at` go in the file: pieces
    /// `(file offset, range in those bytes)`, skipping the holes.
    pub fn data_pieces(&self, at: u64, len: u64) -> Vec<(u64, std::ops::Range<usize>)> {
        let mut out = Vec::new();
        // Walk the data regions between holes, in content order.
        let (mut file_pos, mut content_pos) = (0u64, 0u64);
        let end = at + len;
        let mut regions: Vec<(u64, u64)> = Vec::with_capacity(self.holes.len() + 1);
        for h in &self.holes {
            if h[0] > file_pos {
                regions.push((file_pos, h[0] - file_pos));
            }
            file_pos = h[0] + h[1];
        }
        // The last region runs to the end of whatever content there is.
        regions.push((file_pos, u64::MAX - file_pos));
        for (start, rlen) in regions {
            let (rc0, rc1) = (content_pos, content_pos.saturating_add(rlen));
            content_pos = rc1;
            let (a, b) = (at.max(rc0), end.min(rc1));
            if a < b {
                out.push((start + (a - rc0), (a - at) as usize..(b - at) as usize));
            }
            if rc1 >= end {
                break;
            }
        }
        out
    }
}

/// A directory listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Entries sorted by raw name.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Serializes in a stable form (sorted), so equal directories give equal blob IDs.
    pub fn to_bytes(&mut self) -> Vec<u8> {
        self.nodes.sort_by_key(|a| a.os_name());
        serde_json::to_vec(self).expect("trees serialize")
    }

    /// Parses a tree blob.
    pub fn from_bytes(b: &[u8]) -> Result<Tree, serde_json::Error> {
        serde_json::from_slice(b)
    }

    /// The entry with this exact name.
    pub fn find(&self, name: &OsStr) -> Option<&Node> {
        self.nodes.iter().find(|n| n.os_name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_utf8_names_survive() {
        let raw = OsStr::from_bytes(b"caf\xe9 bar");
        let mut n = Node::new(NodeKind::File, raw);
        n.set_target(OsStr::from_bytes(b"\xff"));
        let mut t = Tree { nodes: vec![n] };
        let back = Tree::from_bytes(&t.to_bytes()).unwrap();
        assert_eq!(back.nodes[0].os_name(), raw);
        assert_eq!(
            back.nodes[0].os_target().unwrap(),
            OsStr::from_bytes(b"\xff")
        );
        assert!(back.find(raw).is_some());
    }

    #[test]
    fn old_trees_parse_and_new_fields_stay_out_when_empty() {
        let n = Node::new(NodeKind::File, OsStr::new("a"));
        let json = serde_json::to_string(&n).unwrap();
        assert!(
            !json.contains("holes") && !json.contains("xattrs"),
            "{json}"
        );
        let back: Node = serde_json::from_str(&json).unwrap();
        assert_eq!(back, n);
    }

    #[test]
    fn content_maps_around_holes() {
        let mut n = Node::new(NodeKind::File, OsStr::new("s"));
        // data 0..10, hole 10..100, data 100..110, hole 110..1000
        n.size = 1000;
        n.holes = vec![[10, 90], [110, 890]];
        assert_eq!(n.data_len(), 20);
        assert_eq!(n.data_pieces(0, 20), vec![(0, 0..10), (100, 10..20)]);
        assert_eq!(n.data_pieces(5, 10), vec![(5, 0..5), (100, 5..10)]);
        assert_eq!(n.data_pieces(12, 8), vec![(102, 0..8)]);
        let plain = Node::new(NodeKind::File, OsStr::new("p"));
        assert_eq!(plain.data_pieces(7, 3), vec![(7, 0..3)]);
        // A file that starts with a hole.
        let mut h = Node::new(NodeKind::File, OsStr::new("h"));
        h.size = 50;
        h.holes = vec![[0, 40]];
        assert_eq!(h.data_pieces(0, 10), vec![(40, 0..10)]);
    }
}
