//! One stack's recovery, phase by phase; a source that fails is reported and the rest go
//! on, since on a host being rebuilt each stack back is worth having.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::gate::{Gate, Stage};
use super::live_checks::{self, volume_dir, CheckOutcome};
use super::scratch::{HostScratch, ScratchProject};
use super::StackRecovery;
use crate::config::SourceKind;
use crate::docker::compose::{Compose, Project};
use crate::docker::{ContainerInfo, Docker};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::session::{Readable, Session};
use crate::source::{self, DatabaseDriver, RestoreJob};
use crate::stack::{self, Destination, LiveTargets, Planned, RestorePlan, Selection, Step};

/// How long a database container gets to accept connections after it is started (a
/// first start initialises its data directory).
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// What a recovery needs besides the plan.
pub struct Context<'s> {
    /// The repository.
    pub session: &'s Session<Readable>,
    /// The daemon, when a stack needs it.
    pub docker: Option<&'s Docker>,
    /// The Compose program, when this host has one.
    pub compose: Option<&'s Compose>,
    /// Set by Ctrl-C.
    pub interrupt: &'s Arc<AtomicBool>,
    /// A new progress bar for a source's restore.
    pub progress: &'s dyn Fn() -> Progress,
    /// Says what is being done, as it starts.
    pub say: &'s dyn Fn(&str),
    /// A host drill's scratch, where everything goes instead of the live host.
    pub scratch: Option<&'s HostScratch>,
}

/// The phases of a stack's recovery, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The project directory (compose files, `.env`).
    ProjectFiles,
    /// The other volumes, into what Compose created.
    Volumes,
    /// The databases, into their started containers.
    Databases,
}

/// A source's part in the recovery.
#[derive(Debug, Clone)]
pub struct SourceOutcome {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: SourceKind,
    /// The time of the point it came from.
    pub time: DateTime<Utc>,
    /// Bytes written or loaded.
    pub bytes: u64,
    /// Seconds its restore took.
    pub seconds: f64,
    /// Why it is not back.
    pub error: Option<String>,
}

/// A stack's recovery: what came back, from when, how long it took, what is left to do.
#[derive(Debug, Clone)]
pub struct StackOutcome {
    /// The stack.
    pub name: String,
    /// Its recovery point's time.
    pub point_time: DateTime<Utc>,
    /// Each source.
    pub sources: Vec<SourceOutcome>,
    /// The drill checks run against it.
    pub checks: Vec<CheckOutcome>,
    /// Seconds from its first step to its last check.
    pub seconds: f64,
    /// Its RTO.
    pub rto: Option<chrono::Duration>,
    /// What went wrong, besides sources and checks (a Compose step).
    pub problems: Vec<String>,
    /// What the operator should know (a host drill's left-out mounts).
    pub notes: Vec<String>,
    /// Commands the operator must still run (no Compose on this host).
    pub commands: Vec<String>,
}

impl StackOutcome {
    fn add(&mut self, (source, problems): Restored) {
        self.sources.push(source);
        self.problems.extend(problems);
    }

    /// Whether everything came back and every check held.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
            && self.commands.is_empty()
            && self.sources.iter().all(|s| s.error.is_none())
            && self.checks.iter().all(|c| c.passed)
    }

    /// Whether it came back within its RTO (`None` without one).
    pub fn within_rto(&self) -> Option<bool> {
        let rto = self.rto?.to_std().ok()?;
        Some(self.seconds <= rto.as_secs_f64())
    }
}

/// Recovers one stack at `at` (its newest backups at or before it); `force` replaces
/// data already in its targets. At `gate` it waits for the stacks it depends on: for
/// their projects before it creates its own, for their data before it starts the rest of
/// its project (its own databases need nothing of theirs); and says how far it is.
pub fn recover_stack(
    cx: &Context<'_>,
    r: &StackRecovery<'_>,
    at: Option<DateTime<Utc>>,
    force: bool,
    gate: &Gate<'_>,
) -> Result<StackOutcome> {
    let t0 = Instant::now();
    let catalog = cx.session.catalog();
    let points = catalog.points(&r.name)?;
    let snapshots = catalog.snapshots(Some(&r.name))?;
    let dest = Destination::Live(LiveTargets {
        config: r.stack,
        into_container: None,
        to: None,
        force,
    });
    let selection = Selection { only: &[], at };
    let plan = RestorePlan::build(&r.name, &points, &snapshots, &selection, dest)?;
    let mut out = StackOutcome {
        name: r.name.clone(),
        point_time: r.point.point.time,
        sources: Vec::new(),
        checks: Vec::new(),
        seconds: 0.0,
        rto: r.rto(),
        problems: Vec::new(),
        notes: Vec::new(),
        commands: Vec::new(),
    };
    for s in &plan.sources {
        if let Planned::NoBackup(n) = s {
            out.problems.push(format!(
                "source {n} has no complete backup{}: not restored",
                stack::plan::when(at)
            ));
        }
    }
    let compose = r.stack.and_then(|s| s.def.compose.as_ref());
    let files: Vec<String> = compose.map_or(Vec::new(), |c| {
        c.files.iter().map(|f| f.get_ref().clone()).collect()
    });
    let project = compose.map(|c| Project {
        name: c.project(),
        dir: Path::new(c.dir()),
        files: &files,
    });
    let mut steps: Vec<Step<'_>> = plan.steps().cloned().collect();
    let phase_of = |s: &Step<'_>| phase(s, project.as_ref().map(|p| p.dir));
    let placed = Placed {
        cx,
        stack: &r.name,
        live_project: compose.map(|c| c.project()),
    };
    for s in steps
        .iter_mut()
        .filter(|s| phase_of(s) == Phase::ProjectFiles)
    {
        placed.place(s, Phase::ProjectFiles)?;
        out.add(restore(cx, s, &r.name));
    }
    let mut scratch_project = None;
    if let Some(p) = &project {
        gate.wait(Stage::Created)?;
        let created = match (cx.scratch, compose) {
            (Some(sc), Some(def)) => create_scratch(cx, sc, def, &steps, &phase_of, &mut out),
            _ => create(cx, p, &steps, &phase_of, &mut out).then_some(None),
        };
        gate.reached(Stage::Created);
        match created {
            Some(sp) => scratch_project = sp,
            None => {
                out.seconds = t0.elapsed().as_secs_f64();
                return Ok(out);
            }
        }
    }
    if project.is_none() {
        // Nothing here is Compose's to hold back: what it restores into may use the
        // dependencies from the start.
        gate.wait(Stage::DataIn)?;
    }
    restore_data(cx, &placed, &mut steps, &phase_of, &mut out);
    // What the stacks that depend on this one need is in: they may start while this one
    // starts the rest of its project and runs its checks.
    (cx.say)(&format!("stack {}: volumes and databases back", r.name));
    gate.reached(Stage::DataIn);
    let up = scratch_project
        .as_ref()
        .map(ScratchProject::project)
        .or(project);
    let up = match (up, cx.compose) {
        (Some(p), Some(c)) => {
            gate.wait(Stage::DataIn)?;
            Some((p, c))
        }
        _ => None,
    };
    let steps: Vec<&Step<'_>> = steps.iter().collect();
    if cx.interrupt.load(Ordering::SeqCst) {
        return Err(Error::Interrupted);
    }
    start_rest_and_check(cx, r, up, &steps, &mut out);
    out.seconds = t0.elapsed().as_secs_f64();
    Ok(out)
}

/// Starts the rest of the project (`up`, when there is one) and runs the stack's drill
/// checks meanwhile: they look at the sources (databases, volumes), none at what `up`
/// starts.
fn start_rest_and_check(
    cx: &Context<'_>,
    r: &StackRecovery<'_>,
    up: Option<(Project<'_>, &Compose)>,
    steps: &[&Step<'_>],
    out: &mut StackOutcome,
) {
    let started = std::thread::scope(|scope| {
        let up = up.map(|(p, c)| {
            (cx.say)(&format!(
                "stack {}: starting the rest of the project",
                r.name
            ));
            scope.spawn(move || c.run(&p, &["up", "-d"]))
        });
        let sources = &out.sources;
        let restored = |name: &str| sources.iter().any(|o| o.name == name && o.error.is_none());
        out.checks = live_checks::run(cx.docker, &r.checks, steps, &restored);
        up.map(|h| h.join().expect("docker-compose up does not panic"))
    });
    if let Some(Err(e)) = started {
        out.problems.push(e.to_string());
    }
}

/// Restores the volumes into what Compose created and the databases into their
/// started containers. A database container that mounts none of the volumes starts
/// before they are restored, so its first start overlaps them.
fn restore_data(
    cx: &Context<'_>,
    placed: &Placed<'_, '_>,
    steps: &mut [Step<'_>],
    phase_of: &dyn Fn(&Step<'_>) -> Phase,
    out: &mut StackOutcome,
) {
    let stack = out.name.clone();
    let volumes_placed: Vec<Result<()>> = steps
        .iter_mut()
        .filter(|s| phase_of(s) == Phase::Volumes)
        .map(|s| placed.place(s, Phase::Volumes))
        .collect();
    let volume_dirs: Vec<PathBuf> = steps
        .iter()
        .filter(|s| phase_of(s) == Phase::Volumes)
        .filter_map(|s| volume_dir(cx.docker, s))
        .collect();
    // A database container that mounts none of the volumes restored next starts now: its
    // first start (initialising a data directory) runs while they are restored. Every one
    // is started before any is waited for, so those run side by side too. The others are
    // held back as they are (`Some`), and started once the volumes are in.
    let held: Vec<Result<Option<ContainerInfo>>> = steps
        .iter_mut()
        .filter(|s| phase_of(s) == Phase::Databases)
        .map(|s| -> Result<Option<ContainerInfo>> {
            placed.place(s, Phase::Databases)?;
            let info = needs_docker(cx)?.container(&s.target.container)?;
            if mounts_any(&info, &volume_dirs) {
                return Ok(Some(info));
            }
            start(cx, &info).map(|()| None)
        })
        .collect();
    let volumes = steps.iter().filter(|s| phase_of(s) == Phase::Volumes);
    for (s, placed) in volumes.zip(volumes_placed) {
        match placed {
            Ok(()) => out.add(restore(cx, s, &stack)),
            Err(e) => out.sources.push(failed(s, e)),
        }
    }
    let databases: Vec<&Step<'_>> = steps
        .iter()
        .filter(|s| phase_of(s) == Phase::Databases)
        .collect();
    let started: Vec<Result<()>> = held
        .into_iter()
        .map(|h| match h? {
            Some(info) => start(cx, &info),
            None => Ok(()),
        })
        .collect();
    load_as_ready(
        cx,
        &stack,
        databases.into_iter().zip(started).collect(),
        out,
    );
}

/// Which phase restores a step: the project directory's files first, then the other
/// volumes, then the databases.
fn phase(s: &Step<'_>, project_dir: Option<&Path>) -> Phase {
    if source::driver(s.rec.kind).is_database() {
        return Phase::Databases;
    }
    let inside = match (project_dir, &s.rec.path) {
        (Some(dir), Some(path)) if s.rec.volume.is_none() => Path::new(path).starts_with(dir),
        _ => false,
    };
    if inside {
        Phase::ProjectFiles
    } else {
        Phase::Volumes
    }
}

/// Creates the project's networks, volumes and containers without starting them;
/// `false` when the rest of the stack cannot go on (then what to run is in `out`).
fn create(
    cx: &Context<'_>,
    p: &Project<'_>,
    steps: &[Step<'_>],
    phase_of: &dyn Fn(&Step<'_>) -> Phase,
    out: &mut StackOutcome,
) -> bool {
    let up = ["up", "--no-start"];
    let result = match cx.compose {
        Some(c) => {
            (cx.say)(&format!(
                "stack {}: creating Compose project {} (networks, volumes, containers)",
                out.name, p.name
            ));
            c.run(p, &up)
        }
        None => Err(Error::Environment(
            "neither docker-compose nor `docker compose` is installed".into(),
        )),
    };
    let Err(e) = result else {
        return true;
    };
    out.problems.push(e.to_string());
    // What is left, as the commands that finish it by hand.
    let rest: Vec<&str> = steps
        .iter()
        .filter(|s| phase_of(s) != Phase::ProjectFiles)
        .map(|s| s.rec.name.as_str())
        .collect();
    out.commands.push(Compose::command_line(cx.compose, p, &up));
    if !rest.is_empty() {
        let sources: Vec<String> = rest.iter().map(|n| format!("--source {n}")).collect();
        out.commands
            .push(format!("drctl restore {} {}", out.name, sources.join(" ")));
    }
    out.commands
        .push(Compose::command_line(cx.compose, p, &["up", "-d"]));
    false
}

/// Where a host drill puts a step: the scratch project's directories, volumes and
/// containers instead of the live ones. A live recovery leaves the step as planned.
struct Placed<'c, 's> {
    cx: &'c Context<'s>,
    stack: &'c str,
    live_project: Option<&'c str>,
}

impl Placed<'_, '_> {
    fn place(&self, s: &mut Step<'_>, phase: Phase) -> Result<()> {
        let Some(sc) = self.cx.scratch else {
            return Ok(());
        };
        let docker = || {
            self.cx
                .docker
                .ok_or_else(|| Error::Environment("a host drill needs the Docker daemon".into()))
        };
        match phase {
            Phase::ProjectFiles => s.target.dir = Some(sc.project_dir(self.stack)),
            Phase::Volumes => {
                s.target.dir = Some(match &s.rec.volume {
                    None => sc.volume_dir(self.stack, &s.rec.name),
                    Some(v) => {
                        let scratch = self
                            .live_project
                            .and_then(|p| {
                                let key = v.strip_prefix(&format!("{p}_"))?;
                                Some(format!("{}_{key}", sc.project_name(p)?))
                            })
                            .ok_or_else(|| {
                                Error::Failed(format!(
                                    "volume {v} is not one of the project's own: a host drill leaves it out"
                                ))
                            })?;
                        docker()?.volume_path(&scratch)?
                    }
                })
            }
            Phase::Databases => {
                if self.live_project.is_none() {
                    return Err(Error::Failed(format!(
                        "stack {} has no [stack.{}.compose] table: a host drill has no server to load into",
                        self.stack, self.stack
                    )));
                }
                s.target.container = sc.container(docker()?, &s.target.container)?;
            }
        }
        Ok(())
    }
}

/// Creates the stack's scratch project from its restored files; `None` when it could
/// not be (the reason is in `out`).
fn create_scratch(
    cx: &Context<'_>,
    sc: &HostScratch,
    def: &crate::config::ComposeDef,
    steps: &[Step<'_>],
    phase_of: &dyn Fn(&Step<'_>) -> Phase,
    out: &mut StackOutcome,
) -> Option<Option<ScratchProject>> {
    let Some(compose) = cx.compose else {
        out.problems
            .push("a host drill needs docker-compose or `docker compose`".into());
        return None;
    };
    let binds: Vec<(PathBuf, PathBuf)> = steps
        .iter()
        .filter(|s| phase_of(s) == Phase::Volumes && s.rec.volume.is_none())
        .filter_map(|s| {
            let live = PathBuf::from(s.rec.path.as_ref()?);
            Some((live, sc.volume_dir(&out.name, &s.rec.name)))
        })
        .collect();
    (cx.say)(&format!(
        "stack {}: creating scratch Compose project {}",
        out.name,
        sc.project_name(def.project()).unwrap_or("?")
    ));
    match sc.create(compose, &out.name, def, &binds) {
        Ok((project, notes)) => {
            out.notes.extend(notes);
            Some(Some(project))
        }
        Err(e) => {
            out.problems.push(e.to_string());
            None
        }
    }
}

/// Starts a database source's container when it is not running.
fn start(cx: &Context<'_>, info: &ContainerInfo) -> Result<()> {
    if info.status != "running" {
        (cx.say)(&format!("starting container {}", info.name));
        needs_docker(cx)?.start(&info.name)?;
    }
    Ok(())
}

fn needs_docker<'a>(cx: &Context<'a>) -> Result<&'a Docker> {
    cx.docker
        .ok_or_else(|| Error::Environment("a database source needs the Docker daemon".into()))
}

/// Loads each database as soon as its server accepts connections, whichever is first
/// (a cache is up long before a PostgreSQL server has initialised its data directory).
/// A server that has not come up after [`READY_TIMEOUT`] of waiting fails with its last
/// log lines.
///
/// The sign that a server may be up is a TCP connection to its port on the container's
/// addresses (the official images' first-start servers listen on their socket alone); the
/// kind's own check, a `docker exec`, then confirms. It runs on its own only once a
/// second (a server on another port, a network this host cannot reach): an exec is
/// expensive, and a few of them a second slow down the very servers being waited for.
fn load_as_ready(
    cx: &Context<'_>,
    stack: &str,
    databases: Vec<(&Step<'_>, Result<()>)>,
    out: &mut StackOutcome,
) {
    let mut waiting = Vec::new();
    for (s, started) in databases {
        match started.and_then(|()| needs_docker(cx)) {
            Ok(docker) => waiting.push(Waiting::new(s, docker)),
            Err(e) => out.sources.push(failed(s, e)),
        }
    }
    let mut deadline = Instant::now() + READY_TIMEOUT;
    while !waiting.is_empty() {
        if let Some(i) = waiting.iter_mut().position(Waiting::ready) {
            let s = waiting.remove(i).step;
            (cx.say)(&format!(
                "container {} accepts connections: loading source {}",
                s.target.container, s.rec.name
            ));
            out.add(restore(cx, s, stack));
            deadline = Instant::now() + READY_TIMEOUT;
            continue;
        }
        let why = if cx.interrupt.load(Ordering::SeqCst) {
            |_: &Waiting<'_, '_>| Error::Interrupted
        } else if Instant::now() > deadline {
            |w: &Waiting<'_, '_>| {
                let name = &w.step.target.container;
                Error::Failed(format!(
                    "the server in container {name} did not accept connections within {}s; \
                     its last log lines: {}",
                    READY_TIMEOUT.as_secs(),
                    w.docker.last_logs(name, 5)
                ))
            }
        } else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        for w in waiting.drain(..) {
            out.sources.push(failed(w.step, why(&w)));
        }
    }
}

/// A database server being waited for.
struct Waiting<'s, 'd> {
    step: &'s Step<'s>,
    server: &'static dyn DatabaseDriver,
    docker: &'d Docker,
    /// Its port on each of the container's addresses.
    sockets: Vec<SocketAddr>,
    /// When the kind's own check last ran.
    checked: Option<Instant>,
}

impl<'s, 'd> Waiting<'s, 'd> {
    fn new(step: &'s Step<'s>, docker: &'d Docker) -> Self {
        let server = source::driver(step.rec.kind)
            .database()
            .expect("a database step has a server");
        // Inspected once started: a container has its addresses only then.
        let sockets = docker
            .container(&step.target.container)
            .map(|info| {
                let port = server.port();
                info.addresses
                    .iter()
                    .map(|ip| SocketAddr::new(*ip, port))
                    .collect()
            })
            .unwrap_or_default();
        Waiting {
            step,
            server,
            docker,
            sockets,
            checked: None,
        }
    }

    fn ready(&mut self) -> bool {
        let listening = self
            .sockets
            .iter()
            .any(|a| TcpStream::connect_timeout(a, Duration::from_millis(100)).is_ok());
        if !listening
            && self
                .checked
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return false;
        }
        self.checked = Some(Instant::now());
        self.server.ready(self.docker, &self.step.target.container)
    }
}

/// A source's outcome, and its restore's warnings as the stack's problems.
type Restored = (SourceOutcome, Vec<String>);

/// Checks a step's target and restores it; either failure is that source's.
fn restore(cx: &Context<'_>, s: &Step<'_>, stack: &str) -> Restored {
    let driver = source::driver(s.rec.kind);
    let progress = (cx.progress)();
    progress.set_message(&format!("{stack} {}", s.rec.name));
    let result = driver
        .check_target(RestoreJob {
            docker: cx.docker,
            rec: &s.rec,
            target: &s.target,
            replay: s.replay.is_some(),
        })
        .and_then(|_| stack::restore_step(cx.session, cx.docker, s, cx.interrupt, &progress));
    match result {
        Ok(r) => (
            SourceOutcome {
                name: s.rec.name.clone(),
                kind: s.rec.kind,
                time: s.point.point.time,
                bytes: r.bytes,
                seconds: r.seconds,
                error: None,
            },
            r.warnings
                .iter()
                .map(|w| format!("source {}: {w}", s.rec.name))
                .collect(),
        ),
        Err(e) => (failed(s, e), Vec::new()),
    }
}

fn failed(s: &Step<'_>, e: Error) -> SourceOutcome {
    SourceOutcome {
        name: s.rec.name.clone(),
        kind: s.rec.kind,
        time: s.point.point.time,
        bytes: 0,
        seconds: 0.0,
        error: Some(e.to_string()),
    }
}

/// Whether a container mounts one of `dirs`, or a directory inside or around one.
fn mounts_any(info: &ContainerInfo, dirs: &[PathBuf]) -> bool {
    info.mounts.iter().any(|(_, host)| {
        dirs.iter()
            .any(|d| host.starts_with(d) || d.starts_with(host))
    })
}
