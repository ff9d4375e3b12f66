//! Following a running benchctl's progress lines: to act (a signal) at a chosen moment of a
//! deploy.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A child's stderr, read by a thread of its own (the child never blocks on a full pipe).
pub struct Progress {
    lines: mpsc::Receiver<String>,
    reader: JoinHandle<()>,
    /// Every line read so far.
    pub seen: String,
}

impl Progress {
    /// Starts reading `child`'s piped stderr.
    pub fn follow(child: &mut Child) -> Self {
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        Progress {
            lines,
            reader,
            seen: String::new(),
        }
    }

    /// Waits (two minutes at most) for a line containing `needle`; false when the output
    /// ended (or the time ran out) first.
    pub fn until(&mut self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_secs(1)) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if found {
                        return true;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            }
        }
        false
    }

    /// Everything the child printed, once it has ended.
    pub fn finish(mut self) -> String {
        let _ = self.reader.join();
        self.seen.extend(self.lines.try_iter().map(|l| l + "\n"));
        self.seen
    }
}
