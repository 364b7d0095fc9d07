//! Create, start, stop, destroy: state, re-attachment, locking, rollback and errors.

use std::time::{Duration, Instant};

use acetate_engine::storage::CREATE_STEPS;
use acetate_engine::testing::{leftovers, shared_state_dir, unique_name};
use acetate_engine::{ContainerSpec, Engine, Error, LimitsUpdate, State};

use crate::helpers::{engine, Ct};

#[test]
fn a_second_engine_finds_and_manages_running_containers() {
    let Some(engine) = engine("a_second_engine_finds_and_manages_running_containers") else {
        return;
    };
    let ct = Ct::started(engine, "life-reattach", |b| b);
    let pid = engine.show(&ct.name).unwrap().pid.unwrap();
    // Another process would open its own engine on the same state dir: so do we.
    let other = Engine::open(shared_state_dir("engine")).unwrap();
    let seen = other.show(&ct.name).unwrap();
    assert_eq!((seen.state, seen.pid), (State::Running, Some(pid)));
    assert!(other.list().unwrap().iter().any(|c| c.name == ct.name));
    other.stop(&ct.name, Duration::from_secs(5)).unwrap();
    assert_eq!(engine.show(&ct.name).unwrap().state, State::Stopped);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
            // The host's pid 1 may leave the exited init as a zombie; it is not running.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
        }
    );
    engine.start(&ct.name).unwrap();
    let (code, out, _) = ct.sh("echo back");
    assert_eq!((code, out.as_str()), (0, "back\n"));
}

#[test]
fn stop_kills_what_ignores_sigterm_and_init_reaps_orphans() {
    let Some(engine) = engine("stop_kills_what_ignores_sigterm_and_init_reaps_orphans") else {
        return;
    };
    let ct = Ct::started(engine, "life-stop", |b| b);
    // Orphans re-parented to init are reaped: no zombie stays.
    let (code, out, _) = ct.sh("sh -c 'sleep 0.2 & exit 0'; sleep 1; \
         cat /proc/[0-9]*/stat 2>/dev/null | awk '{print $3}' | grep -c Z || true");
    assert_eq!((code, out.trim()), (0, "0"));
    // A process that ignores SIGTERM is killed once the timeout passes.
    let (code, _, _) = ct.sh("(trap '' TERM; exec sleep 1000) >/dev/null 2>&1 & echo started");
    assert_eq!(code, 0);
    let t = Instant::now();
    engine.stop(&ct.name, Duration::from_secs(1)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(20));
    let info = engine.show(&ct.name).unwrap();
    assert_eq!(info.state, State::Stopped);
    assert!(info.usage.cgroup.is_none());
    assert!(leftovers(engine.layout(), &ct.name)
        .iter()
        .all(|l| !l.starts_with("cgroup")));
    assert!(matches!(
        engine.stop(&ct.name, Duration::from_secs(1)),
        Err(Error::NotRunning(_))
    ));
    assert!(matches!(
        engine.exec(&ct.name, &["true".into()], &[], Default::default()),
        Err(Error::NotRunning(_))
    ));
}

#[test]
fn a_killed_shell_hangs_up_its_jobs_as_a_closed_terminal_would() {
    let Some(engine) = engine("a_killed_shell_hangs_up_its_jobs_as_a_closed_terminal_would") else {
        return;
    };
    let ct = Ct::started(engine, "life-jobs", |b| b);
    let null = std::fs::File::open("/dev/null").unwrap();
    let io = {
        use std::os::fd::AsRawFd;
        acetate_engine::ExecIo {
            stdin: Some(null.as_raw_fd()),
            stdout: Some(null.as_raw_fd()),
            stderr: Some(null.as_raw_fd()),
            tty: false,
        }
    };
    // A shell with job control that cannot answer a hang-up (stopped: it gets killed, as
    // a shell too slow for the grace does): a job and a nohup job, each in a process
    // group of its own.
    let script = "set -m; sleep 782 & nohup sleep 783 >/dev/null 2>&1 & kill -STOP $$; wait";
    let child = engine
        .spawn_exec(
            &ct.name,
            &["bash".into(), "-c".into(), script.into()],
            &[],
            io,
        )
        .unwrap();
    let running = |what: &str| ct.sh("ps -eo args").1.lines().any(|l| l == what);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(running("sleep 782") && running("sleep 783")) {
        assert!(Instant::now() < deadline, "the jobs did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while running("sleep 782") {
        assert!(
            Instant::now() < deadline,
            "the killed shell's jobs live on: {}",
            ct.sh("ps -eo pid,pgid,sid,args").1
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(running("sleep 783"), "a nohup job was hung up");
    ct.sh("pkill -x sleep");
}

#[test]
fn restart_gives_a_fresh_init_and_keeps_files() {
    let Some(engine) = engine("restart_gives_a_fresh_init_and_keeps_files") else {
        return;
    };
    let ct = Ct::started(engine, "life-restart", |b| b);
    let before = engine.show(&ct.name).unwrap().pid;
    assert_eq!(ct.sh("echo kept > /root/note").0, 0);
    let after = engine.restart(&ct.name, Duration::from_secs(5)).unwrap();
    assert_eq!(after.state, State::Running);
    assert_ne!(after.pid, before);
    assert_eq!(ct.sh("cat /root/note").1, "kept\n");
    assert!(matches!(
        engine.start(&ct.name),
        Err(Error::AlreadyRunning(_))
    ));
}

#[test]
fn reinstall_gives_a_fresh_layer_with_the_same_limits() {
    let Some(engine) = engine("reinstall_gives_a_fresh_layer_with_the_same_limits") else {
        return;
    };
    let ct = Ct::started(engine, "life-reinstall", |b| {
        b.memory(96 << 20).disk(48 << 20)
    });
    assert_eq!(ct.sh("echo mine > /root/note && rm /etc/hostname").0, 0);
    let image = engine.layout().image(&ct.name);
    // A missing template is refused and changes nothing.
    assert!(matches!(
        engine.reinstall(&ct.name, Some("no-such-template"), Duration::from_secs(5)),
        Err(Error::NoSuchTemplate(_))
    ));
    assert_eq!(ct.sh("cat /root/note").1, "mine\n");
    assert!(!image.with_extension("new").exists());

    let before = engine.show(&ct.name).unwrap();
    let after = engine
        .reinstall(&ct.name, None, Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        after.state,
        State::Running,
        "a running container runs again"
    );
    assert_ne!(after.pid, before.pid);
    assert_eq!(after.limits, before.limits);
    assert_eq!(after.host_uid, before.host_uid);
    let (code, out, _) = ct.sh("test -e /root/note; echo $?; test -e /etc/hostname; echo $?");
    assert_eq!(
        (code, out.as_str()),
        (0, "1\n0\n"),
        "the template's files are back, the tenant's gone"
    );
    assert!(!image.with_extension("new").exists());

    // A stopped container stays stopped, with a fresh layer too.
    assert_eq!(ct.sh("touch /root/again").0, 0);
    engine.stop(&ct.name, Duration::from_secs(5)).unwrap();
    let after = engine
        .reinstall(&ct.name, Some("host"), Duration::from_secs(5))
        .unwrap();
    assert_eq!(after.state, State::Stopped);
    engine.start(&ct.name).unwrap();
    assert_eq!(ct.sh("test -e /root/again; echo $?").1, "1\n");
}

#[test]
fn destroying_a_running_container_leaves_nothing() {
    let Some(engine) = engine("destroying_a_running_container_leaves_nothing") else {
        return;
    };
    let name = unique_name("life-destroy");
    engine
        .create(
            &ContainerSpec::builder(&name)
                .disk(64 << 20)
                .build()
                .unwrap(),
        )
        .unwrap();
    engine.start(&name).unwrap();
    let code = engine
        .exec(
            &name,
            &[
                "sh".into(),
                "-c".into(),
                "sleep 100 >/dev/null 2>&1 & dd if=/dev/zero of=/f bs=1M count=4 2>/dev/null"
                    .into(),
            ],
            &[],
            Default::default(),
        )
        .unwrap();
    assert_eq!(code, 0);
    engine.destroy(&name, Duration::from_secs(2)).unwrap();
    assert_eq!(leftovers(engine.layout(), &name), Vec::<String>::new());
    assert!(matches!(engine.show(&name), Err(Error::NoSuchContainer(_))));
    assert!(matches!(
        engine.destroy(&name, Duration::from_secs(1)),
        Err(Error::NoSuchContainer(_))
    ));
}

#[test]
fn a_create_that_fails_half_way_leaves_nothing() {
    let Some(engine) = engine("a_create_that_fails_half_way_leaves_nothing") else {
        return;
    };
    for step in CREATE_STEPS {
        let failing = Engine::open(shared_state_dir("engine"))
            .unwrap()
            .with_fail_point(step);
        let name = unique_name(&format!("fail-{step}"));
        let spec = ContainerSpec::builder(&name)
            .disk(64 << 20)
            .build()
            .unwrap();
        let err = failing.create(&spec).unwrap_err();
        assert!(matches!(err, Error::FailPoint(s) if s == *step), "{err}");
        assert_eq!(
            leftovers(engine.layout(), &name),
            Vec::<String>::new(),
            "failure at {step}"
        );
        assert!(matches!(engine.show(&name), Err(Error::NoSuchContainer(_))));
    }
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let Some(engine) = engine("bad_input_gets_a_clear_error_and_changes_nothing") else {
        return;
    };
    let ct = Ct::created(engine, "life-errors", |b| b.disk(64 << 20));
    let before = engine.show(&ct.name).unwrap();

    let dup = ContainerSpec::builder(&ct.name).build().unwrap();
    assert!(matches!(engine.create(&dup), Err(Error::NameTaken(_))));
    let unknown_name = unique_name("life-tpl");
    let unknown = ContainerSpec::builder(&unknown_name)
        .template("no-such-template")
        .build()
        .unwrap();
    let err = engine.create(&unknown).unwrap_err();
    assert!(matches!(err, Error::NoSuchTemplate(_)));
    assert!(err.to_string().contains("no-such-template"));
    assert!(matches!(
        ContainerSpec::builder("Bad/Name").build(),
        Err(Error::InvalidName(..))
    ));
    for missing in ["nope", "../etc", ""] {
        assert!(matches!(
            engine.start(missing),
            Err(Error::NoSuchContainer(_))
        ));
        assert!(matches!(
            engine.show(missing),
            Err(Error::NoSuchContainer(_))
        ));
        assert!(matches!(
            engine.set(
                missing,
                &LimitsUpdate {
                    procs: Some(10),
                    ..Default::default()
                }
            ),
            Err(Error::NoSuchContainer(_))
        ));
    }
    let err = engine
        .set(
            &ct.name,
            &LimitsUpdate {
                memory: Some(1024),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("memory"), "{err}");
    let err = engine
        .set(
            &ct.name,
            &LimitsUpdate {
                disk: Some(32 << 20),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("only grow"), "{err}");
    let after = engine.show(&ct.name).unwrap();
    assert_eq!(
        (after.limits, after.state),
        (before.limits, before.state),
        "nothing changed"
    );
    assert_eq!(
        leftovers(engine.layout(), &unknown_name),
        Vec::<String>::new()
    );
}

#[test]
fn concurrent_operations_on_one_container_are_serialised() {
    let Some(engine) = engine("concurrent_operations_on_one_container_are_serialised") else {
        return;
    };
    let ct = Ct::created(engine, "life-lock", |b| b.disk(64 << 20));
    // Eight racing starts: exactly one wins, the others see it running.
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8).map(|_| s.spawn(|| engine.start(&ct.name))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, Error::AlreadyRunning(_))));
    // Racing creates of one new name: exactly one wins.
    let name = unique_name("life-race");
    let spec = ContainerSpec::builder(&name)
        .disk(64 << 20)
        .build()
        .unwrap();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| engine.create(&spec))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    engine.destroy(&name, Duration::from_secs(1)).unwrap();
}

#[test]
fn the_remains_of_an_interrupted_create_or_destroy_are_recovered() {
    let Some(engine) = engine("the_remains_of_an_interrupted_create_or_destroy_are_recovered")
    else {
        return;
    };
    // A destroy that crashed after removing the config: mounts, loop device and files stay.
    let name = unique_name("life-crash");
    let spec = ContainerSpec::builder(&name)
        .disk(64 << 20)
        .build()
        .unwrap();
    engine.create(&spec).unwrap();
    std::fs::remove_file(engine.layout().config(&name)).unwrap();
    assert!(matches!(engine.show(&name), Err(Error::NoSuchContainer(_))));
    assert!(!leftovers(engine.layout(), &name).is_empty());
    // Creating the name again sweeps the debris first.
    engine.create(&spec).unwrap();
    std::fs::remove_file(engine.layout().config(&name)).unwrap();
    let repaired = engine.recover().unwrap();
    assert!(repaired.contains(&name), "{repaired:?}");
    assert_eq!(leftovers(engine.layout(), &name), Vec::<String>::new());

    // A start that crashed before recording its init: processes run in the cgroup while
    // the container counts as stopped. Recovery kills them.
    let ct = Ct::started(engine, "life-orphan", |b| b.disk(64 << 20));
    let pid = engine.show(&ct.name).unwrap().pid.unwrap();
    std::fs::remove_file(engine.layout().run_state(&ct.name)).unwrap();
    assert_eq!(engine.show(&ct.name).unwrap().state, State::Stopped);
    let repaired = engine.recover().unwrap();
    assert!(repaired.contains(&ct.name), "{repaired:?}");
    // Killed: its cgroup is gone once it left it, a moment before it is a zombie.
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
    };
    let dead = (0..500).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        gone()
    });
    assert!(dead, "the orphaned init was killed");
    engine.start(&ct.name).unwrap();
}

#[test]
fn after_a_simulated_reboot_exactly_the_running_containers_come_back() {
    if engine("after_a_simulated_reboot_exactly_the_running_containers_come_back").is_none() {
        return;
    }
    let engine = crate::helpers::engine_of("engine-boot");
    let running = Ct::started(engine, "boot-run", |b| b.network(true));
    let stopped = Ct::started(engine, "boot-stopped", |b| b);
    engine
        .stop(&stopped.name, std::time::Duration::from_secs(2))
        .unwrap();
    let never = Ct::created(engine, "boot-never", |b| b);
    let restarted = Ct::started(engine, "boot-restarted", |b| b);
    engine
        .restart(&restarted.name, std::time::Duration::from_secs(2))
        .unwrap();
    // The reboot: every container process killed, every mount and loop device gone.
    for ct in [&running, &stopped, &never, &restarted] {
        if let Some(pid) = engine.show(&ct.name).unwrap().pid {
            // SAFETY: kill(2) takes no pointers.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            for _ in 0..200 {
                if engine.show(&ct.name).unwrap().pid.is_none() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        acetate_engine::storage::unmount_all(engine.layout(), &ct.name).unwrap();
    }
    let results = engine.start_all(4).unwrap();
    let names: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
    let mut expected = vec![running.name.as_str(), restarted.name.as_str()];
    expected.sort();
    assert_eq!(names, expected, "{results:?}");
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    for (ct, up) in [
        (&running, true),
        (&restarted, true),
        (&stopped, false),
        (&never, false),
    ] {
        assert_eq!(
            engine.show(&ct.name).unwrap().pid.is_some(),
            up,
            "{}",
            ct.name
        );
    }
    // Back with its network; a second pass has nothing to do.
    let (code, out, _) = running.sh("cat /sys/class/net/eth0/operstate");
    assert_eq!((code, out.trim()), (0, "up"));
    let again = engine.start_all(4).unwrap();
    assert!(
        again.iter().all(|(n, _)| !n.starts_with("boot-")),
        "{again:?}"
    );
}

#[test]
fn a_container_knows_its_own_name_and_keeps_its_identity_files() {
    let Some(engine) = engine("a_container_knows_its_own_name_and_keeps_its_identity_files") else {
        return;
    };
    let ct = Ct::started(engine, "life-ident", |b| {
        b.hostname(Some("shop-web".into()))
    });
    let (code, out, err) =
        ct.sh("hostname; cat /etc/hostname; getent hosts shop-web; stat -c '%u %a' /etc/hosts");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out, "shop-web\nshop-web\n127.0.1.1       shop-web\n0 644\n",
        "the name, the file, an answer from /etc/hosts (no DNS wait), root's to edit"
    );
    // Its own to change, and kept over a restart.
    let (code, _, err) = ct.sh("echo '127.0.1.2 api' >> /etc/hosts");
    assert_eq!(code, 0, "{err}");
    engine.restart(&ct.name, Duration::from_secs(5)).unwrap();
    assert_eq!(ct.sh("getent hosts api").1, "127.0.1.2       api\n");
    // A reinstall gives the fresh layer the same identity.
    engine
        .reinstall(&ct.name, None, Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        ct.sh("hostname; cat /etc/hostname").1,
        "shop-web\nshop-web\n"
    );
    // A bad hostname is refused before anything is made.
    let bad = ContainerSpec::builder(unique_name("life-badhost"))
        .hostname(Some("-no".into()))
        .build();
    assert!(bad.is_err(), "{bad:?}");
}

#[test]
fn a_template_is_deleted_only_when_no_container_uses_it() {
    let Some(engine) = engine("a_template_is_deleted_only_when_no_container_uses_it") else {
        return;
    };
    let name = unique_name("tdel");
    let src = tempfile::tempdir().unwrap();
    for dir in ["bin", "etc", "proc", "dev", "sys", "run", "tmp"] {
        std::fs::create_dir_all(src.path().join(dir)).unwrap();
    }
    engine.import_template(&name, src.path()).unwrap();
    let ct = Ct::created(engine, "life-tdel", |b| b.template(name.clone()));
    let refused = engine.delete_template(&name).unwrap_err();
    assert!(matches!(refused, Error::TemplateInUse(_, 1)), "{refused}");
    assert!(engine.templates().unwrap().iter().any(|t| t.name == name));
    drop(ct); // destroys it
    engine.delete_template(&name).unwrap();
    assert!(!engine.templates().unwrap().iter().any(|t| t.name == name));
    let left: Vec<_> = std::fs::read_dir(engine.layout().templates())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(&name))
        .collect();
    assert!(left.is_empty(), "nothing of it is left: {left:?}");
    assert!(matches!(
        engine.delete_template(&name),
        Err(Error::NoSuchTemplate(_))
    ));
}

#[test]
fn a_new_container_gets_the_providers_resolvers_and_may_change_them() {
    if engine("a_new_container_gets_the_providers_resolvers_and_may_change_them").is_none() {
        return;
    }
    let engine: &'static Engine = Box::leak(Box::new(
        Engine::open(shared_state_dir("engine"))
            .unwrap()
            .with_resolvers(vec![
                "192.0.2.53".parse().unwrap(),
                "2001:db8::53".parse().unwrap(),
            ]),
    ));
    let ct = Ct::started(engine, "life-dns", |b| b);
    let (code, out, err) = ct.sh("cat /etc/resolv.conf; stat -c %u /etc/resolv.conf");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("nameserver 192.0.2.53\nnameserver 2001:db8::53\n"),
        "{out}"
    );
    assert!(
        out.ends_with("\n0\n"),
        "owned by the container's root: {out}"
    );
    // The customer's to change, and it stays changed across a restart.
    let (code, _, err) = ct.sh("echo 'nameserver 198.51.100.1' > /etc/resolv.conf");
    assert_eq!(code, 0, "{err}");
    engine.restart(&ct.name, Duration::from_secs(5)).unwrap();
    let (_, out, _) = ct.sh("cat /etc/resolv.conf");
    assert_eq!(out, "nameserver 198.51.100.1\n");
}
