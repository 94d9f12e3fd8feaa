//! The bash session the commands run in, and scratch PostgreSQL databases.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::*;

// ---------------------------------------------------------------------------------------------
// The shell session.

/// Scratch PostgreSQL databases for one scenario, named after the doc's database names.
pub(crate) struct Pg {
    /// `postgres://user[:password]@host:port`
    pub(crate) base: String,
    pub(crate) host: String,
    pub(crate) port: String,
    pub(crate) user: String,
    pub(crate) password: Option<String>,
    pub(crate) prefix: String,
    pub(crate) created: Vec<String>,
}

impl Pg {
    pub(crate) fn new(url: &str, scenario: &str) -> Self {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .expect("BLINDSIGHT_TEST_POSTGRES_URL is a postgres:// URL");
        let authority = rest.split('/').next().unwrap();
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .unwrap_or(("postgres", authority));
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u.to_owned(), Some(p.to_owned())),
            None => (userinfo.to_owned(), None),
        };
        let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
        Self {
            base: format!("postgres://{userinfo}@{hostport}"),
            host: host.to_owned(),
            port: port.to_owned(),
            user,
            password,
            prefix: format!("docs_{}_{}", scenario.replace('-', "_"), std::process::id()),
            created: Vec::new(),
        }
    }

    /// The scratch database standing for the doc's `name`.
    pub(crate) fn scratch(&mut self, name: &str) -> String {
        let scratch = format!("{}_{}", self.prefix, name.replace('-', "_"));
        if !self.created.contains(&scratch) {
            self.created.push(scratch.clone());
        }
        scratch
    }

    pub(crate) fn env(&self, cmd: &mut Command) {
        cmd.env("PGHOST", &self.host)
            .env("PGPORT", &self.port)
            .env("PGUSER", &self.user);
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p);
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        for db in &self.created {
            let mut cmd = Command::new("dropdb");
            self.env(&mut cmd);
            let _ = cmd
                .args(["--if-exists", "--force", db])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

pub(crate) struct Shell {
    pub(crate) name: &'static str,
    pub(crate) child: Child,
    pub(crate) stdin: ChildStdin,
    pub(crate) cwd: tempfile::TempDir,
    pub(crate) io: tempfile::TempDir,
    pub(crate) _bin: tempfile::TempDir,
    pub(crate) port: u16,
    pub(crate) n: usize,
    pub(crate) vars: BTreeMap<String, String>,
    pub(crate) servers: Vec<(u32, String)>,
    pub(crate) pg: Option<Pg>,
}

pub(crate) const PASSPHRASE: &str = "docs test passphrase, not a secret";

impl Shell {
    pub(crate) fn start(name: &'static str, pg: Option<Pg>) -> Self {
        let client = PathBuf::from(env!("CARGO_BIN_EXE_blindsight"));
        let server =
            client.with_file_name(format!("blindsight-server{}", std::env::consts::EXE_SUFFIX));
        assert!(
            server.is_file(),
            "{} is missing: run `cargo test --workspace` (or `cargo build -p blindsight-server`) so \
             the server binary is built beside the client's",
            server.display()
        );
        let bin = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&client, bin.path().join("blindsight")).unwrap();
        std::os::unix::fs::symlink(&server, bin.path().join("blindsight-server")).unwrap();
        let port = free_port();
        let cwd = tempfile::tempdir().unwrap();
        let io = tempfile::tempdir().unwrap();
        let path = std::env::join_paths(std::iter::once(bin.path().to_owned()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap();
        let mut cmd = Command::new("bash");
        for (k, _) in std::env::vars() {
            if k.starts_with("BLINDSIGHT_") && k != "BLINDSIGHT_LOG" {
                cmd.env_remove(&k);
            }
        }
        cmd.args(["--noprofile", "--norc", "-s"])
            .current_dir(cwd.path())
            .env("PATH", path)
            .env("BLINDSIGHT_PASSPHRASE", PASSPHRASE)
            .env("BLINDSIGHT_LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(pg) = &pg {
            pg.env(&mut cmd);
        }
        // Its own process group, so a failed scenario can stop everything it started.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().expect("bash runs");
        let stdin = child.stdin.take().unwrap();
        println!(
            "== scenario {name}: in {}, port {port}",
            cwd.path().display()
        );
        Self {
            name,
            child,
            stdin,
            cwd,
            io,
            _bin: bin,
            port,
            n: 0,
            vars: BTreeMap::new(),
            servers: Vec::new(),
            pg,
        }
    }

    pub(crate) fn cwd(&self) -> &Path {
        self.cwd.path()
    }

    pub(crate) fn note(&self, what: &str) {
        println!("-- {what}");
    }

    pub(crate) fn set(&mut self, placeholder: &str, value: &str) {
        self.vars.insert(placeholder.to_owned(), value.to_owned());
    }

    pub(crate) fn var(&self, placeholder: &str) -> String {
        self.vars
            .get(placeholder)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no value for {placeholder} yet (known: {:?})",
                    self.name,
                    self.vars.keys().collect::<Vec<_>>()
                )
            })
            .clone()
    }

    pub(crate) fn send(&mut self, script: &str) {
        self.stdin.write_all(script.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    pub(crate) fn export(&mut self, name: &str, value: &str) {
        assert!(
            value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:@".contains(c)),
            "{name}: unexpected characters in {value:?}"
        );
        self.send(&format!("export {name}='{value}'\n"));
    }

    /// The command as it runs here (see the file's header).
    pub(crate) fn prepare(&mut self, text: &str) -> String {
        let port = self.port;
        let mut s = as_binaries(text)
            .replace(":8080", &format!(":{port}"))
            .replace("0.0.0.0:", "127.0.0.1:")
            .replace(
                "https://blindsight.example",
                &format!("http://localhost:{port}"),
            )
            .replace("/var/lib/blindsight", "blindsight-data");
        if s.contains("postgres://")
            || ["createdb ", "dropdb ", "pg_dump ", "pg_restore "]
                .iter()
                .any(|t| s.contains(t))
        {
            s = self.postgres(&s);
        }
        // Placeholders, as a reader copies them from earlier output.
        if s.contains("bst_…") {
            let auditor = self.var("<auditor>");
            s = s.replace("bst_…", &auditor);
        }
        while let Some(i) = s.find('<') {
            let j = i + s[i..].find('>').expect("a placeholder ends with >");
            let value = self.var(&s[i..=j]);
            s.replace_range(i..=j, &value);
        }
        s
    }

    /// Database names and URLs as scratch databases.
    pub(crate) fn postgres(&mut self, s: &str) -> String {
        let pg = self
            .pg
            .as_mut()
            .unwrap_or_else(|| panic!("a PostgreSQL command in a SQLite scenario: {s}"));
        let mut out = String::new();
        for (k, word) in s.split(' ').enumerate() {
            if k > 0 {
                out.push(' ');
            }
            if let Some(at) = word.find("postgres://") {
                // `postgres://…` or `VARIABLE=postgres://…`: the database is the last segment.
                let name = word.rsplit('/').next().unwrap();
                let scratch = pg.scratch(name);
                out.push_str(&format!("{}{}/{scratch}", &word[..at], pg.base));
            } else {
                out.push_str(word);
            }
        }
        // Database names given to the PostgreSQL tools: every word after one of them that is
        // not an option, a redirection or a file.
        let words: Vec<String> = out.split(' ').map(str::to_owned).collect();
        let mut tool = false;
        let mut result = Vec::new();
        for w in words {
            if ["createdb", "dropdb", "pg_dump", "pg_restore"].contains(&w.as_str()) {
                tool = true;
                result.push(w);
                continue;
            }
            if w == "&&" || w == ">" || w == "|" {
                tool = false;
                result.push(w);
                continue;
            }
            let is_name = tool
                && !w.starts_with('-')
                && !w.contains('.')
                && !w.contains('/')
                && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            result.push(if is_name { pg.scratch(&w) } else { w });
        }
        result.join(" ")
    }

    pub(crate) fn wait_for(&self, path: &Path, what: &str, timeout: Duration) {
        let start = Instant::now();
        while !path.exists() {
            if start.elapsed() > timeout {
                panic!("{}: {what} did not finish in {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.io.path().join(name)).unwrap_or_default()
    }

    /// Runs a documented command and checks what it did; captures what later commands use.
    pub(crate) fn run(&mut self, command: &DocCommand, expect: Expect) {
        let mut prepared = self.prepare(&command.text);
        let daemon = is_daemon(&prepared);
        if daemon && !prepared.trim_end().ends_with('&') {
            prepared.push_str(" &");
        }
        self.n += 1;
        let n = self.n;
        let io = self.io.path().display().to_string();
        println!("$ {}    ({}:{})", prepared, command.file, command.line);
        let mut script = format!(
            "{{ {prepared}\n}} >{io}/{n}.out 2>{io}/{n}.err </dev/null\necho $? >{io}/{n}.rc.tmp\n"
        );
        if daemon {
            script.push_str(&format!("echo $! >{io}/{n}.pid\n"));
        }
        script.push_str(&format!("mv {io}/{n}.rc.tmp {io}/{n}.rc\n"));
        self.send(&script);
        self.wait_for(
            &self.io.path().join(format!("{n}.rc")),
            &prepared,
            Duration::from_secs(600),
        );
        let rc: i32 = self.read(&format!("{n}.rc")).trim().parse().unwrap();
        if daemon {
            let pid: u32 = self.read(&format!("{n}.pid")).trim().parse().unwrap();
            self.servers.push((pid, prepared.clone()));
            self.wait_ready(n, pid, &prepared);
            return;
        }
        let out = self.read(&format!("{n}.out"));
        let err = self.read(&format!("{n}.err"));
        let shown = |s: &str| -> String {
            let s = s.trim_end();
            if s.len() > 3000 {
                let mut i = s.len() - 3000;
                while !s.is_char_boundary(i) {
                    i += 1;
                }
                format!("…{}", &s[i..])
            } else {
                s.to_owned()
            }
        };
        println!("{}", shown(&out));
        let context = format!(
            "{}: `{}` ({}:{}) exited {rc}\nstdout:\n{}\nstderr:\n{}",
            self.name,
            prepared,
            command.file,
            command.line,
            shown(&out),
            shown(&err)
        );
        let problem = problem_type(&out);
        match expect {
            Success | Prints(_) => {
                assert_eq!(rc, 0, "{context}");
                assert!(problem.is_none(), "a problem document: {context}");
                if let Prints(what) = expect {
                    assert!(out.contains(what), "expected {what:?} in stdout: {context}");
                }
            }
            Problem(slug) => {
                assert_eq!(
                    problem.as_deref(),
                    Some(format!("https://blindsight.dev/problems/{slug}").as_str()),
                    "expected the {slug} problem: {context}"
                );
            }
        }
        self.capture(&prepared, &out);
    }

    /// Values later commands use: tokens, key ids, fingerprints, job ids.
    pub(crate) fn capture(&mut self, prepared: &str, out: &str) {
        if let Ok(serde_json::Value::Object(reply)) = serde_json::from_str(out.trim()) {
            if let Some(tokens) = reply.get("tokens").and_then(|t| t.as_object()) {
                for role in ["keyholder", "ingest", "auditor"] {
                    let token = tokens[role].as_str().unwrap().to_owned();
                    self.set(&format!("<{role}>"), &token);
                    self.export(&role.to_uppercase(), &token);
                }
            }
            if let Some(job) = reply.get("job_id").and_then(|j| j.as_str()) {
                let job = job.to_owned();
                self.set("<job-id>", &job);
                self.export("JOB_ID", &job);
            }
        }
        let words: Vec<&str> = prepared.split_whitespace().collect();
        let sub = words
            .iter()
            .position(|w| *w == "blindsight")
            .and_then(|i| words.get(i + 1))
            .copied();
        if sub == Some("keygen") {
            for line in out.lines() {
                if let Some(rest) = line.strip_prefix("key set ") {
                    let id = rest.split_whitespace().next().unwrap().to_owned();
                    self.set("<key-id>", &id);
                    self.export("KEY_ID", &id);
                }
                if let Some(fp) = line.strip_prefix("manifest fingerprint ") {
                    self.set("<fingerprint>", fp.trim());
                }
            }
        }
        if matches!(sub, Some("score" | "query")) && words.contains(&"--wait") {
            let job = out.lines().next().unwrap_or_default().trim().to_owned();
            assert!(job.starts_with("job-"), "no job id printed: {out}");
            self.set("<job-id>", &job);
            self.export("JOB_ID", &job);
        }
    }

    /// Waits until a background server answers ready, or a worker has started.
    pub(crate) fn wait_ready(&self, n: usize, pid: u32, prepared: &str) {
        let start = Instant::now();
        loop {
            let log = format!(
                "{}{}",
                self.read(&format!("{n}.out")),
                self.read(&format!("{n}.err"))
            );
            let ready = if prepared.contains(" serve") {
                http_ok(self.port, "/readyz")
            } else {
                log.contains("worker started")
            };
            if ready {
                println!("   ({} is ready)", prepared);
                return;
            }
            if !Path::new(&format!("/proc/{pid}")).exists() {
                panic!("{}: `{prepared}` exited early:\n{log}", self.name);
            }
            if start.elapsed() > Duration::from_secs(180) {
                panic!("{}: `{prepared}` not ready after 180 s:\n{log}", self.name);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM to every server, which must shut down gracefully (exit 0).
    pub(crate) fn stop_servers(&mut self) {
        for (pid, command) in std::mem::take(&mut self.servers) {
            self.n += 1;
            let n = self.n;
            let io = self.io.path().display().to_string();
            self.send(&format!(
                "kill -TERM {pid}; wait {pid}; echo $? >{io}/{n}.rc.tmp; mv {io}/{n}.rc.tmp {io}/{n}.rc\n"
            ));
            self.wait_for(
                &self.io.path().join(format!("{n}.rc")),
                &format!("stopping `{command}`"),
                Duration::from_secs(120),
            );
            let rc = self.read(&format!("{n}.rc"));
            assert_eq!(
                rc.trim(),
                "0",
                "{}: `{command}` did not exit 0 on SIGTERM",
                self.name
            );
            println!("   (`{command}` stopped on SIGTERM, exit 0)");
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        // Everything the scenario started is in the shell's process group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// A free port below Linux's ephemeral range (32768–60999), so the outgoing connections of
/// other scenarios, which take ephemeral ports, cannot be given it before the server binds.
pub(crate) fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Spread by process id so concurrent test runs start apart; 20000–31999.
    let start = (std::process::id() % 1000) as u16 * 12;
    loop {
        let port = 20_000 + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Whether a command starts a long-running server process.
pub(crate) fn is_daemon(prepared: &str) -> bool {
    let words: Vec<&str> = prepared.split_whitespace().collect();
    words
        .windows(2)
        .any(|w| w[0] == "blindsight-server" && (w[1] == "serve" || w[1] == "worker"))
}

/// The `type` of a problem document, when `out` is one.
pub(crate) fn problem_type(out: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(out.trim()).ok()?;
    let kind = value.get("type")?.as_str()?;
    kind.starts_with("https://blindsight.dev/problems/")
        .then(|| kind.to_owned())
}

pub(crate) fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.1 200")
}
