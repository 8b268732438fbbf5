//! Other users: each user's streams are their own, a squatted name is refused and reported
//! with the squatter's uid, and `USER/NAME` reaches a group-shared stream only for members.
//!
//! Run as two (and three) non-root uids through `setpriv`, since root could remove what
//! the others create and would hide a squat. Needs root (to switch uids) and setpriv;
//! skipped with a message otherwise.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use shm_frames::testing::{ChildProc, HANG, TempDir, TestStream};

/// Two users who share group `GROUP`, and a third who is in no group of theirs.
const ALICE: u32 = 4242;
const BOB: u32 = 4343;
const EVE: u32 = 4444;
const GROUP: u32 = 4200;

/// The consumer binary copied where the test users may execute it.
struct Binary {
    _dir: TempDir,
    path: PathBuf,
}

impl Binary {
    fn new() -> Option<Binary> {
        let root = nix::unistd::geteuid().is_root();
        let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
        if !root || !setpriv {
            eprintln!("SKIPPED: needs root and setpriv to run processes as other users");
            return None;
        }
        let dir = TempDir::new("users");
        let path = dir.join("consumer");
        std::fs::copy(env!("CARGO_BIN_EXE_consumer"), &path).unwrap();
        std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Some(Binary { _dir: dir, path })
    }

    /// `consumer ARGS` as `uid`, in group `gid` (and only that group).
    fn command(&self, uid: u32, gid: u32, args: &[&str]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg(format!("--groups={gid}"))
            .arg(&self.path)
            .args(args)
            .env_remove("FRAMEPIPE_STREAM");
        cmd
    }

    /// A producer of stream `name` as `uid`, ready once this returns.
    fn producer(&self, uid: u32, gid: u32, name: &str, extra: &[&str]) -> ChildProc {
        let mut args = vec![
            "__producer",
            "--stream",
            name,
            "--size",
            "64x48",
            "--fps",
            "50",
        ];
        args.extend_from_slice(extra);
        let child = ChildProc::spawn(self.command(uid, gid, &args));
        child.expect_contains("ready: stream", HANG);
        child
    }

    fn run(&self, uid: u32, gid: u32, args: &[&str]) -> Output {
        self.command(uid, gid, args).output().unwrap()
    }
}

/// Unlinks every object of stream `name` of each test user (as root), before and after.
struct Objects {
    name: String,
}

impl Objects {
    fn new(name: &str) -> Objects {
        let objects = Objects {
            name: name.to_owned(),
        };
        objects.remove();
        objects
    }

    fn remove(&self) {
        for uid in [ALICE, BOB, EVE] {
            let base = format!("/framepipe.{uid}.{}", self.name);
            let _ = nix::sys::mman::shm_unlink(base.as_str());
            let _ = nix::mqueue::mq_unlink(format!("{base}.ctl").as_str());
            for seat in 0..16 {
                let _ = nix::mqueue::mq_unlink(format!("{base}.s{seat}").as_str());
            }
        }
    }
}

impl Drop for Objects {
    fn drop(&mut self) {
        self.remove();
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stats(bin: &Binary, uid: u32, gid: u32, stream: &str) -> Output {
    bin.run(
        uid,
        gid,
        &[
            "stats", "--stream", stream, "--frames", "5", "--verify", "--json", "--wait", "10s",
        ],
    )
}

/// A child's role, when this test binary is re-executed as another user.
#[test]
fn __role_entry() {
    if std::env::var("FP_ROLE").as_deref() != Ok("bind") {
        return;
    }
    use std::os::linux::net::SocketAddrExt;
    let name = std::env::var("FP_SOCKET").unwrap();
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    println!("BOUND");
    // Hold the name until the test closes our stdin (or kills us).
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
}

#[test]
fn each_users_stream_of_one_name_is_their_own() {
    let Some(bin) = Binary::new() else { return };
    let stream = TestStream::new("mine");
    let _objects = Objects::new(stream.as_str());
    let _alice = bin.producer(ALICE, ALICE, stream.as_str(), &[]);
    let _bob = bin.producer(BOB, BOB, stream.as_str(), &[]);
    for uid in [ALICE, BOB] {
        let out = stats(&bin, uid, uid, stream.as_str());
        assert!(out.status.success(), "uid {uid}: {}", stderr(&out));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["torn"], 0, "uid {uid}: {summary}");
    }
}

#[test]
fn a_squatted_region_is_refused_and_names_the_squatter() {
    let Some(bin) = Binary::new() else { return };
    let stream = TestStream::new("squat");
    let objects = Objects::new(stream.as_str());
    // Bob creates an object under Alice's name first (as a buggy or hostile user could).
    let squat = format!("/dev/shm/framepipe.{ALICE}.{}", stream.as_str());
    let made = Command::new("setpriv")
        .args([
            &format!("--reuid={BOB}"),
            &format!("--regid={BOB}"),
            "--clear-groups",
        ])
        .args([
            "sh",
            "-c",
            &format!("head -c 8192 /dev/urandom > {squat}; chmod 666 {squat}"),
        ])
        .status()
        .unwrap();
    assert!(made.success());
    let out = bin.run(
        ALICE,
        ALICE,
        &["__producer", "--stream", stream.as_str(), "--frames", "1"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("belongs to uid {BOB}")),
        "{}",
        stderr(&out)
    );
    // Alice's consumer never reads Bob's object either.
    let out = bin.run(
        ALICE,
        ALICE,
        &[
            "stats",
            "--stream",
            stream.as_str(),
            "--frames",
            "1",
            "--wait",
            "0s",
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains(&format!("belongs to uid {BOB}")),
        "{}",
        stderr(&out)
    );
    drop(objects);
}

#[test]
fn a_squatted_owner_socket_is_refused_and_names_the_squatter() {
    let Some(bin) = Binary::new() else { return };
    let stream = TestStream::new("sock");
    let _objects = Objects::new(stream.as_str());
    // Bob binds Alice's abstract owner socket (abstract sockets have no permissions): this
    // test binary, copied where Bob may run it, in the `bind` role.
    let socket = format!("framepipe.{ALICE}.{}", stream.as_str());
    let dir = TempDir::new("bob");
    let copy = dir.join("users-test");
    std::fs::copy(std::env::current_exe().unwrap(), &copy).unwrap();
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={BOB}"),
        &format!("--regid={BOB}"),
        "--clear-groups",
    ])
    .arg(&copy)
    .args([
        "__role_entry",
        "--exact",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env("FP_ROLE", "bind")
    .env("FP_SOCKET", &socket);
    let squatter = ChildProc::spawn(cmd);
    squatter.expect("BOUND", HANG);
    let out = bin.run(
        ALICE,
        ALICE,
        &["__producer", "--stream", stream.as_str(), "--frames", "1"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("of uid {BOB}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn user_slash_name_reaches_a_group_shared_stream_for_members_only() {
    let Some(bin) = Binary::new() else { return };
    let stream = TestStream::new("grp");
    let _objects = Objects::new(stream.as_str());
    let _alice = bin.producer(ALICE, GROUP, stream.as_str(), &["--mode", "0660"]);
    let theirs = format!("{ALICE}/{}", stream.as_str());
    // Bob is in the group: he reads Alice's stream on purpose.
    let out = stats(&bin, BOB, GROUP, &theirs);
    assert!(out.status.success(), "{}", stderr(&out));
    // Eve is not: refused, never a panic.
    let out = bin.run(
        EVE,
        EVE,
        &[
            "stats", "--stream", &theirs, "--frames", "1", "--wait", "0s",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_private_stream_is_refused_even_to_a_group_member() {
    let Some(bin) = Binary::new() else { return };
    let stream = TestStream::new("priv");
    let _objects = Objects::new(stream.as_str());
    let _alice = bin.producer(ALICE, GROUP, stream.as_str(), &[]);
    let theirs = format!("{ALICE}/{}", stream.as_str());
    let out = bin.run(
        BOB,
        GROUP,
        &[
            "stats", "--stream", &theirs, "--frames", "1", "--wait", "0s",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
}
