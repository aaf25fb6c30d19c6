//! Runs a command and prints its output numbered, line by line, as it
//! comes; Ctrl-C kills the command (and is not the end of this program,
//! which reports how the command ended).
//!
//! ```text
//! cargo run --example child_lines -- ping -c 3 127.0.0.1
//! cargo run --example child_lines            # a small script of its own
//! ```
use std::pin::pin;

use futures_util::future::{select, Either};
use uvasync::process::{Command, Stdio};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let mut cmd = match args.next() {
        Some(program) => Command::new(program),
        None => {
            let mut sh = Command::new("sh");
            sh.args(["-c", "for i in 1 2 3; do echo tick $i; sleep 0.2; done; echo done >&2"]);
            sh
        }
    };
    cmd.args(args).stdout(Stdio::piped()).kill_on_drop(true);
    uvasync::run(async move {
        let mut child = cmd.spawn()?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        // Made now: a Ctrl-C from here on counts, and does not end us.
        let mut ctrl_c = pin!(uvasync::signal::ctrl_c());
        let mut n = 0;
        loop {
            match select(pin!(stdout.read_line()), ctrl_c.as_mut()).await {
                Either::Left((line, _)) => {
                    let line = line?;
                    if line.is_empty() {
                        break; // the child closed its stdout
                    }
                    n += 1;
                    print!("{n:4}  {line}");
                }
                Either::Right((interrupted, _)) => {
                    interrupted?;
                    eprintln!("Ctrl-C: killing pid {:?}", child.id());
                    child.start_kill()?;
                    break;
                }
            }
        }
        let status = child.wait().await?;
        eprintln!("{n} lines; the command ended with {status}");
        Ok(())
    })
}
