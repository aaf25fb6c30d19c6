//! Child processes (issue 24, items 1 and 5): spawning with arguments,
//! environment and directory, each kind of stdio, pipes beyond the kernel's
//! buffer both ways, exit codes and signals, a cancelled wait, kill on
//! drop with no zombie left, and a thousand children.
use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use uvasync::process::{Command, Stdio};
use uvasync::signal::SignalKind;
use uvasync::Runtime;

const LONG: Duration = Duration::from_secs(5);

/// The state letter of process `pid` if it is our child, from /proc.
fn child_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ...": comm may hold spaces; it ends at the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid: u32 = fields.next()?.parse().ok()?;
    (ppid == std::process::id()).then_some(state)
}

/// Runs the loop until `pid` is no child of ours any more (reaped), for at
/// most 5 s; false if it is still there (a zombie if its state is 'Z').
async fn gone(pid: u32) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if child_state(pid).is_none() {
            return true;
        }
        uvasync::sleep_ms(5).await;
    }
    false
}

#[test]
fn args_env_and_current_dir_reach_the_child() {
    let dir = std::env::temp_dir().canonicalize().unwrap();
    uvasync::run(async {
        let out = Command::new("sh")
            .args(["-c", "printf '%s|%s|%s|%s' \"$1\" \"$2\" \"$FOO\" \"$(pwd -P)\"", "sh"])
            .arg("one arg")
            .arg("two")
            .env("FOO", "bar baz")
            .current_dir(&dir)
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("one arg|two|bar baz|{}", dir.display()));
        assert!(out.stderr.is_empty());
    });
}

#[test]
fn env_remove_and_env_clear() {
    uvasync::run(async {
        // The parent's environment is inherited (PATH), less what is removed.
        let out = Command::new("sh")
            .args(["-c", "echo \"${PATH:+path} ${HOME:-nohome}\""])
            .env_remove("HOME")
            .output()
            .await
            .unwrap();
        assert_eq!(out.stdout, b"path nohome\n");
        let out =
            Command::new("env").env("DROPPED", "1").env_clear().envs([("A", "1"), ("B", "2")]).output().await.unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "A=1\nB=2\n");
    });
}

#[test]
fn each_kind_of_stdio() {
    let path = std::env::temp_dir().join(format!("uva-process-stdio-{}", std::process::id()));
    uvasync::run(async {
        // null: the child's descriptor 0 is /dev/null.
        let out = Command::new("readlink").arg("/proc/self/fd/0").stdin(Stdio::null()).output().await.unwrap();
        assert_eq!(out.stdout, b"/dev/null\n");
        // inherit: the child's descriptor 2 is ours.
        let ours = std::fs::read_link("/proc/self/fd/2").unwrap();
        let out = Command::new("sh")
            .args(["-c", "readlink /proc/self/fd/2"])
            .stderr(Stdio::inherit())
            .output()
            .await
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim_end(), ours.to_str().unwrap());
        // a file: the child writes it; one Command spawns twice with it.
        let file = std::fs::File::create(&path).unwrap();
        let mut cmd = Command::new("echo");
        cmd.arg("line").stdout(file);
        assert!(cmd.status().await.unwrap().success());
        assert!(cmd.status().await.unwrap().success());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "line\nline\n");
        // piped: the three pipes of one child.
        let mut child = Command::new("sh")
            .args(["-c", "read x; echo \"out $x\"; echo \"err $x\" >&2"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.as_mut().unwrap().write_all(b"hi\n").await.unwrap();
        let out = child.wait_with_output().await.unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, b"out hi\n");
        assert_eq!(out.stderr, b"err hi\n");
        // Not piped: no pipe field.
        let child = Command::new("true").stdout(Stdio::null()).spawn().unwrap();
        assert!(child.stdin.is_none() && child.stdout.is_none() && child.stderr.is_none());
    });
    std::fs::remove_file(&path).unwrap();
}

/// (process group, session) of the child that prints its own /proc stat.
async fn group_and_session(cmd: &mut Command) -> (u32, u32, u32) {
    let out = cmd.args(["-c", "echo $$; cat /proc/$$/stat"]).output().await.unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (pid, stat) = text.split_once('\n').unwrap();
    // After "(comm)": state, ppid, pgrp, session.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    (pid.trim().parse().unwrap(), fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

#[test]
fn setsid_starts_a_new_session_and_process_group() {
    uvasync::run(async {
        let (pid, pgrp, sid) = group_and_session(Command::new("sh").setsid(true)).await;
        assert_eq!((pgrp, sid), (pid, pid), "the child leads its own group and session");
        let (pid, pgrp, sid) = group_and_session(&mut Command::new("sh")).await;
        assert_ne!(pgrp, pid, "without setsid the child stays in our group");
        assert_ne!(sid, pid);
    });
}

#[test]
fn output_larger_than_the_pipe_while_writing_stdin_does_not_deadlock() {
    // 4 MiB through cat: both pipes (64 KiB in the kernel) fill many times
    // while the other side is busy.
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    uvasync::run(async {
        let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let to_write = data.clone();
        let writer = uvasync::spawn(async move {
            stdin.write_all(&to_write).await.unwrap();
            stdin.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        let n = uvasync::timeout(Duration::from_secs(20), stdout.read_to_end(&mut got)).await.unwrap().unwrap();
        writer.await.unwrap();
        assert_eq!(n, data.len());
        assert!(got == data, "the bytes came back changed");
        assert!(child.wait().await.unwrap().success());
    });
}

#[test]
fn shutting_stdin_down_gives_the_child_end_of_file() {
    uvasync::run(async {
        let mut child = Command::new("wc").arg("-c").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"12345").await.unwrap();
        assert_eq!(stdin.write_nowait(b"678").unwrap(), 0);
        stdin.shutdown().await.unwrap(); // a pipe: closed after the queue
        let err = stdin.write_all(b"late").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
        stdin.shutdown().await.unwrap(); // again: nothing to do
        let out = uvasync::timeout(LONG, child.wait_with_output()).await.unwrap().unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "8");
    });
}

#[test]
fn a_shutdown_given_up_while_the_queue_is_written_still_ends_the_input() {
    // The core's shutdown, once asked for, happens after the queue is
    // written, as a socket's half-close: the child sees the end of its
    // input while `stdin` is still held (it used to need the drop).
    uvasync::run(async {
        let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let data = vec![7u8; 1 << 20]; // more than both pipes hold
        assert!(stdin.write_nowait(&data).unwrap() > 0);
        // Nobody reads stdout yet, so cat stalls and the queue stays.
        assert!(uvasync::timeout(Duration::from_millis(20), stdin.shutdown()).await.is_err());
        let mut got = Vec::new();
        let n = uvasync::timeout(LONG, stdout.read_to_end(&mut got)).await.expect("cat saw its end").unwrap();
        assert_eq!(n, data.len());
        assert!(child.wait().await.unwrap().success());
        stdin.shutdown().await.unwrap(); // done already: at once
        drop(stdin);
    });
}

#[test]
fn wait_with_output_reads_both_pipes_beyond_their_buffers() {
    uvasync::run(async {
        // 1 MiB to each pipe, interleaved: reading one pipe only would stall.
        let script =
            "i=0; while [ $i -lt 16 ]; do head -c 65536 /dev/zero; head -c 65536 /dev/zero >&2; i=$((i+1)); done";
        let out = Command::new("sh").args(["-c", script]).output().await.unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout.len(), 1 << 20);
        assert_eq!(out.stderr.len(), 1 << 20);
    });
}

#[test]
fn exit_code_and_exit_by_signal() {
    uvasync::run(async {
        let status = Command::new("sh").args(["-c", "exit 42"]).status().await.unwrap();
        assert_eq!((status.code(), status.signal()), (Some(42), None));
        assert!(!status.success());
        let status = Command::new("true").status().await.unwrap();
        assert!(status.success());
        // The child ends itself with SIGTERM.
        let status = Command::new("sh").args(["-c", "kill -TERM $$"]).status().await.unwrap();
        assert_eq!((status.code(), status.signal()), (None, Some(SignalKind::terminate().as_raw_value())));
        // We end it with SIGKILL, then with a signal of our choice.
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        child.kill().await.unwrap();
        assert_eq!(child.wait().await.unwrap().signal(), Some(9));
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        child.send_signal(SignalKind::user_defined1()).unwrap();
        assert_eq!(child.wait().await.unwrap().signal(), Some(SignalKind::user_defined1().as_raw_value()));
        // After the end: the status is kept, killing is no error, no pid.
        assert!(child.try_wait().unwrap().is_some());
        child.start_kill().unwrap();
        assert_eq!(child.id(), None);
    });
}

#[test]
fn try_wait_is_none_while_running_and_the_status_after() {
    uvasync::run(async {
        let mut child = Command::new("sh").args(["-c", "read x"]).stdin(Stdio::piped()).spawn().unwrap();
        assert!(child.id().is_some());
        assert_eq!(child.try_wait().unwrap(), None);
        uvasync::sleep_ms(20).await; // a try_wait leaves no wake-up behind
        assert_eq!(child.try_wait().unwrap(), None);
        drop(child.stdin.take()); // end of file: `read` returns, sh exits 1
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "the child did not end");
            uvasync::sleep_ms(2).await;
        };
        assert_eq!(status.code(), Some(1));
        assert_eq!(child.wait().await.unwrap(), status);
    });
}

#[test]
fn a_wait_cancelled_by_timeout_then_kill_on_drop_leaves_no_zombie() {
    uvasync::run(async {
        let mut child = Command::new("sleep").arg("1000").kill_on_drop(true).spawn().unwrap();
        let pid = child.id().unwrap();
        let r = uvasync::timeout(Duration::from_millis(50), child.wait()).await;
        assert!(r.is_err(), "sleep 1000 ended early: {r:?}");
        assert!(matches!(child_state(pid), Some(s) if s != 'Z'), "the child should still run");
        // The cancelled wait left nothing behind: a new one works.
        let r = uvasync::timeout(Duration::from_millis(10), child.wait()).await;
        assert!(r.is_err());
        drop(child); // SIGKILL; the core reaps it
        assert!(gone(pid).await, "child {pid} was not reaped (state {:?})", child_state(pid));
    });
}

#[test]
fn waits_dropped_under_a_combinator_or_by_abort_leave_nothing_behind() {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    uvasync::run(async {
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        {
            // FuturesUnordered polls with wakers of its own (parked on the
            // task): the wait is then dropped while registered.
            let mut set = FuturesUnordered::new();
            set.push(child.wait());
            assert!(uvasync::timeout(Duration::from_millis(20), set.next()).await.is_err());
        }
        child.start_kill().unwrap();
        assert_eq!(uvasync::timeout(LONG, child.wait()).await.unwrap().unwrap().signal(), Some(9));

        // A task aborted while it waits: its future (and the Child, killed
        // on drop) is dropped in its step.
        let mut child = Command::new("sleep").arg("1000").kill_on_drop(true).spawn().unwrap();
        let pid = child.id().unwrap();
        let waiter = uvasync::spawn(async move { child.wait().await });
        uvasync::sleep_ms(10).await;
        waiter.abort();
        assert!(waiter.await.unwrap_err().is_cancelled());
        assert!(gone(pid).await, "child {pid} was not reaped (state {:?})", child_state(pid));
    });
}

#[test]
fn a_dropped_child_without_kill_on_drop_runs_on_and_is_reaped() {
    uvasync::run(async {
        let child = Command::new("sleep").arg("0.2").spawn().unwrap();
        let pid = child.id().unwrap();
        drop(child);
        uvasync::sleep_ms(50).await;
        assert!(matches!(child_state(pid), Some(s) if s != 'Z'), "the dropped child should run on");
        assert!(gone(pid).await, "child {pid} was not reaped (state {:?})", child_state(pid));
    });
}

#[test]
fn a_child_left_running_when_the_runtime_drops_is_reaped() {
    let rt = Runtime::new().unwrap();
    let pid = rt.block_on(async { Command::new("sleep").arg("0.3").spawn().unwrap().id().unwrap() });
    drop(rt);
    let start = Instant::now();
    while child_state(pid).is_some() {
        assert!(start.elapsed() < Duration::from_secs(5), "child {pid} was not reaped");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_thousand_children_spawned_and_reaped() {
    let start = Instant::now();
    uvasync::run(async {
        let mut children: Vec<_> = (0..1000).map(|_| Command::new("true").spawn().unwrap()).collect();
        let pids: Vec<u32> = children.iter().map(|c| c.id().unwrap()).collect();
        for child in &mut children {
            assert!(child.wait().await.unwrap().success());
        }
        assert!(pids.iter().all(|&pid| child_state(pid).is_none()), "a child was left unreaped");
    });
    let took = start.elapsed();
    eprintln!("1000 children spawned and reaped in {took:?}");
    // Under ASan or valgrind (rust/sanitize.sh sets UVASYNC_TEST_SLOW) a
    // fork costs far more: only the correctness counts there.
    if std::env::var_os("UVASYNC_TEST_SLOW").is_none() {
        assert!(took < Duration::from_secs(20), "1000 children took {took:?}");
    }
}

#[test]
fn a_missing_program_is_not_found() {
    uvasync::run(async {
        let err = Command::new("uvasync-no-such-program").spawn().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let err = Command::new("/nonexistent/bin/prog").output().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let err = Command::new("true").current_dir("/nonexistent-dir").status().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let err = Command::new("tr\0ue").spawn().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn a_child_used_from_another_runtime_is_a_clear_error() {
    let rt1 = Runtime::new().unwrap();
    let rt2 = Runtime::new().unwrap();
    let mut child = rt1.block_on(async {
        Command::new("sh").args(["-c", "echo hi; exec sleep 30"]).stdout(Stdio::piped()).spawn().unwrap()
    });
    rt2.block_on(async {
        let err = child.wait().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("another runtime"), "{err}");
        let err = child.try_wait().unwrap_err();
        assert!(err.to_string().contains("another runtime"), "{err}");
        let err = child.stdout.as_mut().unwrap().read_line().await.unwrap_err();
        assert!(err.to_string().contains("another runtime"), "{err}");
    });
    rt1.block_on(async {
        assert_eq!(child.stdout.as_mut().unwrap().read_line().await.unwrap(), "hi\n");
        child.kill().await.unwrap();
    });
}

#[cfg(feature = "futures-io")]
#[test]
fn pipes_implement_the_futures_io_traits() {
    use futures_util::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    uvasync::run(async {
        let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        AsyncWriteExt::write_all(&mut stdin, b"first line\nsecond").await.unwrap();
        AsyncWriteExt::close(&mut stdin).await.unwrap();
        let mut line = String::new();
        AsyncBufReadExt::read_line(&mut stdout, &mut line).await.unwrap();
        assert_eq!(line, "first line\n");
        let mut rest = String::new();
        AsyncReadExt::read_to_string(&mut stdout, &mut rest).await.unwrap();
        assert_eq!(rest, "second");
        assert!(child.wait().await.unwrap().success());
    });
}
