//! The fake engine's commands, sessions and port forwards (see [`super::fake`]).

use std::time::Duration;

use acetate_engine::forward::Forward;
use acetate_engine::spec::Init;
use acetate_engine::template::TemplateInfo;
use acetate_engine::{Error, Result};

use super::fake::FakeRuntime;
use super::{CommandOutcome, CommandRun, SessionOpen};

impl FakeRuntime {
    /// The fake engine runs no processes: interactive sessions need the real one.
    pub(super) fn fake_session(
        &self,
        name: &str,
        _req: super::interactive::SessionRequest,
    ) -> SessionOpen {
        let exists = self.lock().containers.contains_key(name);
        let name = name.to_string();
        Box::pin(async move {
            if !exists {
                return Err(Error::NoSuchContainer(name).into());
            }
            Err(Error::Unsupported("interactive sessions need the real engine".into()).into())
        })
    }

    /// Echoes the command: `echo` prints its arguments, `false` exits 1, anything else
    /// prints the command line.
    pub(super) fn fake_command(
        &self,
        name: &str,
        argv: Vec<String>,
        _timeout: Duration,
        max_output: usize,
    ) -> CommandRun {
        let exists = self.lock().containers.contains_key(name);
        let name = name.to_string();
        Box::pin(async move {
            if !exists {
                return Err(Error::NoSuchContainer(name).into());
            }
            let (exit_code, mut stdout) = match argv.first().map(String::as_str) {
                Some("echo") => (0, format!("{}\n", argv[1..].join(" "))),
                Some("false") => (1, String::new()),
                _ => (0, format!("{}\n", argv.join(" "))),
            };
            let truncated = stdout.len() > max_output;
            stdout.truncate(max_output);
            Ok(CommandOutcome {
                exit_code,
                stdout,
                stderr: String::new(),
                truncated,
                timed_out: false,
            })
        })
    }

    /// The engine's rules: a public port leads to one container; the same forward again
    /// changes nothing.
    pub(super) fn fake_add_forward(&self, name: &str, f: Forward) -> Result<Vec<Forward>> {
        let mut inner = self.lock();
        if !inner.containers.contains_key(name) {
            return Err(Error::NoSuchContainer(name.to_string()));
        }
        let taken = inner.forwards.iter().any(|(ct, list)| {
            list.iter()
                .any(|x| x.same_public(&f) && (ct != name || *x != f))
        });
        if taken {
            return Err(Error::InvalidLimit {
                what: "forward",
                msg: format!("public port {} is already forwarded", f.public),
            });
        }
        let list = inner.forwards.entry(name.to_string()).or_default();
        if !list.contains(&f) {
            list.push(f);
            list.sort();
        }
        Ok(list.clone())
    }

    pub(super) fn fake_remove_forward(
        &self,
        name: &str,
        p: acetate_engine::forward::PublicPort,
    ) -> Result<Vec<Forward>> {
        let mut inner = self.lock();
        let list = inner.forwards.entry(name.to_string()).or_default();
        list.retain(|f| !(f.public == p.port && f.udp == p.udp && f.address == p.address));
        Ok(list.clone())
    }

    pub(super) fn fake_set_egress(&self, name: &str, allowed: bool) -> Result<()> {
        let mut inner = self.lock();
        if !inner.containers.contains_key(name) {
            return Err(Error::NoSuchContainer(name.to_string()));
        }
        if allowed {
            inner.no_egress.remove(name);
        } else {
            inner.no_egress.insert(name.to_string());
        }
        Ok(())
    }

    pub fn add_template(&self, name: &str) {
        self.lock().templates.insert(
            name.to_string(),
            TemplateInfo {
                name: name.to_string(),
                source: "fake".into(),
                created_at: 0,
                entries: 1,
                bytes: 0,
                containers: 0,
                os: None,
                // As the real `host` template (the host's systemd); others have none.
                init: if name == "host" {
                    Init::Systemd
                } else {
                    Init::Minimal
                },
                tree_version: 0,
            },
        );
    }

    pub(super) fn fake_set_init(&self, name: &str, init: Option<Init>) -> Result<()> {
        let mut inner = self.lock();
        let Some(template) = inner.containers.get(name).map(|c| c.template.clone()) else {
            return Err(Error::NoSuchContainer(name.to_string()));
        };
        let own = inner.templates[&template].init;
        if let Some(info) = inner.containers.get_mut(name) {
            info.init = init.unwrap_or(own);
        }
        Ok(())
    }

    /// Running container `name` boots SysV init, which halts (or reboots) from inside,
    /// as a customer's `halt` or `reboot` does (for tests): the next settle finishes it.
    pub fn halt_inside(&self, name: &str, halt: acetate_engine::spec::Halt) {
        let mut inner = self.lock();
        if let Some(info) = inner.containers.get_mut(name) {
            info.init = Init::Sysvinit;
        }
        inner.halted_inside.insert(name.to_string(), halt);
    }

    /// Running container `name`'s systemd goes down by itself after a `reboot` or a
    /// `poweroff` inside (for tests): stopped, for the next settle to finish.
    pub fn exit_inside(&self, name: &str, halt: acetate_engine::spec::Halt) {
        let mut inner = self.lock();
        if let Some(info) = inner.containers.get_mut(name) {
            Self::halt(info);
        }
        inner.halted_inside.insert(name.to_string(), halt);
    }

    pub(super) fn fake_settle_halts(
        &self,
        names: &[String],
    ) -> Vec<(String, acetate_engine::spec::Halt, Result<()>)> {
        let pid = self.pid();
        let mut inner = self.lock();
        let mut done = Vec::new();
        for name in names {
            let Some(halt) = inner.halted_inside.remove(name) else {
                continue;
            };
            let name = name.clone();
            let Some(info) = inner.containers.get_mut(&name) else {
                continue;
            };
            Self::halt(info);
            if halt == acetate_engine::spec::Halt::Reboot {
                Self::run(info, pid);
            }
            done.push((name, halt, Ok(())));
        }
        done
    }

    /// Whether container `name` may reach the outside (for tests).
    pub fn egress_of(&self, name: &str) -> bool {
        !self.lock().no_egress.contains(name)
    }

    /// Adds OOM kills and refused forks to running container `name`'s counters, as the
    /// kernel would (for tests of limit hits).
    pub fn add_faults(&self, name: &str, oom_kills: u64, forks_refused: u64) {
        let mut inner = self.lock();
        let info = inner.containers.get_mut(name).expect("a fake container");
        assert_eq!(info.state, acetate_engine::State::Running, "{name} runs");
        let cg = info.usage.cgroup.get_or_insert_with(Default::default);
        cg.oom_kills += oom_kills;
        cg.pids_refused += forks_refused;
    }
}
