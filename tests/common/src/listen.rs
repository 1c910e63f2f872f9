//! Waiting for a server process the test started to listen on its port, and only that one.
//!
//! The tests pick a port with [`crate::smtp::free_port`] (bind to port 0, close, reuse the
//! number), and many tests run at once: between the pick and the server's own bind another
//! test's server may take the same port. A connection that succeeds then proves nothing about
//! the server this test started (which fails to bind, "address in use", and exits), so the
//! wait asks the kernel who owns the listening socket.

use std::net::TcpStream;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use crate::smtp::free_port;

/// How the start of a server process ended.
#[derive(Debug)]
pub enum Started {
    /// It (or a process it started) listens on the port.
    Listening,
    /// It exited first: e.g. the port was taken meanwhile (address in use). The caller may
    /// try again on another port.
    Exited(ExitStatus),
    /// Neither within 20 s.
    TimedOut,
}

/// Waits (20 s at most) until `child` or a process it started listens on 127.0.0.1:`port`
/// (TCP); a listener of any other process on that port does not count.
pub fn wait_for_listener(child: &mut Child, port: u16) -> Started {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Started::Exited(status);
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() && owns_listener(child.id(), port) {
            return Started::Listening;
        }
        if Instant::now() >= deadline {
            return Started::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a server with `start(port)` on a port from [`free_port`] and waits until it
/// listens there; when it exits at start instead (the port was taken between the choice and
/// its bind), tries again on another port, three times in all. Panics naming `what` with
/// `log()` (read after each failed start) when it never listens; a server that hangs is killed.
pub fn start_on_free_port(
    what: &str,
    log: impl Fn() -> String,
    mut start: impl FnMut(u16) -> Child,
) -> (Child, u16) {
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        let port = free_port();
        let mut child = start(port);
        match wait_for_listener(&mut child, port) {
            Started::Listening => return (child, port),
            Started::Exited(_) if attempt < ATTEMPTS => continue,
            Started::Exited(status) => panic!(
                "{what} exited at start ({status}), {ATTEMPTS} times on fresh ports:\n{}",
                log()
            ),
            Started::TimedOut => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{what} did not listen on port {port} within 20 s:\n{}",
                    log()
                );
            }
        }
    }
    unreachable!("the last attempt returns or panics")
}

/// Whether process `pid` or one of its descendants holds a TCP socket listening on `port`
/// (IPv4, as the tests' servers bind 127.0.0.1), read from Linux's /proc.
pub fn owns_listener(pid: u32, port: u16) -> bool {
    let inodes = listening_inodes(port);
    !inodes.is_empty() && family(pid).iter().any(|p| holds_any(*p, &inodes))
}

/// The inodes of the sockets listening on `port`, from /proc/net/tcp: after the header, one
/// line a socket, `sl local_address rem_address st … uid timeout inode`, the address as
/// hexadecimal `IP:PORT` and state 0A meaning LISTEN.
fn listening_inodes(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port_hex = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            (local.ends_with(&port_hex) && *state == "0A").then(|| (*inode).to_string())
        })
        .collect()
}

/// `pid` and its descendants (servers such as NSD run their work in child processes).
fn family(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let tasks = format!("/proc/{}/task", all[i]);
        for task in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            all.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
        i += 1;
    }
    all
}

/// Whether process `pid` has one of the sockets `inodes` open.
fn holds_any(pid: u32, inodes: &[String]) -> bool {
    let fds = format!("/proc/{pid}/fd");
    std::fs::read_dir(fds)
        .into_iter()
        .flatten()
        .flatten()
        .any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| {
                let target = target.to_string_lossy();
                inodes
                    .iter()
                    .any(|inode| target == format!("socket:[{inode}]"))
            })
        })
}
