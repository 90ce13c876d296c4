//! What the end-to-end tests of the `coffer` binary share: a scratch folder with a store, a
//! master key file and the example policy and retention rules in the environment.
#![allow(
    dead_code,
    reason = "each test binary uses its own part of this module"
)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub(crate) const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/policies/accounting-firm.toml"
);
pub(crate) const RETENTION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/policies/retention.toml"
);

/// A scratch folder, removed when dropped.
pub(crate) struct Env {
    pub(crate) dir: PathBuf,
}

impl Env {
    pub(crate) fn new(name: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("coffer-ops-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Env { dir }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The command, run in the folder, with the shared settings in its environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_coffer"));
        c.current_dir(&self.dir)
            .args(args)
            .env("COFFER_STORE", self.path("store.db"))
            .env("COFFER_MASTER_KEY_FILE", self.path("master.key"))
            .env("COFFER_POLICY", POLICY)
            .env("COFFER_RETENTION", RETENTION)
            .env("COFFER_ACTOR", "ops-test")
            .env_remove("COFFER_MASTER_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs the command with `stdin` as its input.
    pub(crate) fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = self.command(args).spawn().unwrap();
        if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        child.wait_with_output().unwrap()
    }

    /// Runs the command, which must succeed; its standard output.
    pub(crate) fn ok(&self, args: &[&str], stdin: &[u8]) -> String {
        let o = self.run(args, stdin);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    }

    /// A master key file and a new store.
    pub(crate) fn init(&self) {
        self.ok(&["keygen", "--out", "master.key"], b"");
        self.ok(&["init"], b"");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Standard output and standard error, for messages.
pub(crate) fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}
