//! Containers whose template has systemd boot it: services enabled inside come back after a
//! restart, the journal works, and a stop is a clean shutdown.

use std::time::{Duration, Instant};

use acetate_engine::spec::Init;

use crate::helpers::{engine, engine_of, Ct};

const UNIT: &str = "[Unit]
Description=a tenant's web server
[Service]
ExecStartPre=/bin/sh -c 'date +%s.%N >> /var/lib/web-starts'
ExecStart=/usr/bin/python3 -m http.server 8080 --bind 127.0.0.1 --directory /var/lib
ExecStop=/bin/sh -c 'echo stopped-in-order >> /var/lib/web-stops'
[Install]
WantedBy=multi-user.target
";

/// Fetches `path` from the container's own web server, waiting for it to listen.
fn fetch(ct: &Ct, path: &str) -> String {
    let (code, out, err) = ct.sh(&format!(
        "for i in $(seq 100); do python3 -c 'import urllib.request,sys; \
         sys.stdout.write(urllib.request.urlopen(\"http://127.0.0.1:8080/{path}\").read().decode())' \
         2>/dev/null && exit 0; sleep 0.1; done; exit 1"
    ));
    assert_eq!(code, 0, "the service answers: {out}{err}");
    out
}

#[test]
fn systemd_keeps_enabled_services_across_restarts_and_shuts_down_cleanly() {
    let Some(engine) = engine("systemd_keeps_enabled_services_across_restarts") else {
        return;
    };
    let ct = Ct::started(engine, "boot-svc", |b| b);
    let info = engine.show(&ct.name).unwrap();
    assert_eq!(info.init, Init::Systemd, "the host template boots systemd");
    assert_eq!(ct.booted(), "running", "every unit came up");
    // The fitted tree is up to date: systemd-sysusers has nothing to do at a boot.
    let (_, out, _) = ct.sh("systemctl show -p ConditionResult --value systemd-sysusers");
    assert_eq!(out, "no\n", "systemd-sysusers skipped");
    // The host's inotify instances, charged to its root for every container, were raised
    // (at 128 the 18th systemd container's units failed).
    let instances: u64 = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(instances >= 1_048_576, "{instances}");
    let (code, out, err) = ct.sh(&format!(
        "cat /proc/1/cmdline | tr '\\0' ' '; echo; \
         cat > /etc/systemd/system/web.service <<'UNIT'\n{UNIT}UNIT\n\
         systemctl enable --now web.service 2>&1"
    ));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("/sbin/init"), "{out}");
    assert_eq!(fetch(&ct, "web-starts").lines().count(), 1);

    // Each start is a boot of its own, not the host's.
    let boot_id = |ct: &Ct| ct.sh("cat /proc/sys/kernel/random/boot_id").1;
    let first_boot = boot_id(&ct);
    let host_boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(first_boot.trim().len(), 36, "{first_boot}");
    assert_ne!(first_boot, host_boot);
    // A stop is systemd's own shutdown: units stop in order, well before the timeout.
    let timeout = Duration::from_secs(30);
    let t = Instant::now();
    engine.stop(&ct.name, timeout).unwrap();
    assert!(t.elapsed() < timeout, "stopped without being killed");

    engine.start(&ct.name).unwrap();
    assert_eq!(ct.booted(), "running");
    assert_ne!(boot_id(&ct), first_boot, "a new boot id at each start");
    assert_eq!(fetch(&ct, "web-stops"), "stopped-in-order\n");
    assert_eq!(
        fetch(&ct, "web-starts").lines().count(),
        2,
        "enabled, it came back by itself"
    );
    let (_, out, _) = ct.sh("systemctl is-enabled web; systemctl is-active web; \
         journalctl --no-pager -b -u web | grep -c 'Started web.service'; \
         journalctl --no-pager -b -1 -u web | grep -c 'Stopped web.service'");
    assert_eq!(
        out, "enabled\nactive\n1\n1\n",
        "the journal has this boot's start and, kept on disk, the last boot's stop"
    );
    // Its cgroup tree is its own, within a bound it cannot lift.
    let (_, out, _) = ct.sh("cat /sys/fs/cgroup/cgroup.max.descendants; \
         echo max > /sys/fs/cgroup/cgroup.max.descendants 2>/dev/null && echo LIFTED; \
         test -d /sys/fs/cgroup/system.slice/web.service && echo own-groups");
    assert_eq!(out, "1024\nown-groups\n");
}

#[test]
fn a_container_may_ask_for_the_minimal_init_and_switches_on_restart() {
    let Some(engine) = engine("a_container_may_ask_for_the_minimal_init") else {
        return;
    };
    let ct = Ct::started(engine, "boot-min", |b| b.init(Init::Minimal));
    assert_eq!(engine.show(&ct.name).unwrap().init, Init::Minimal);
    let (_, out, _) = ct.sh("cat /proc/1/cmdline | tr '\\0' ' '");
    assert!(out.starts_with("acetate-init"), "{out}");
    // Back to the template's own: from the next start.
    let info = engine.set_init(&ct.name, None).unwrap();
    assert_eq!(
        info.init,
        Init::Minimal,
        "a running container keeps its PID 1"
    );
    engine.stop(&ct.name, Duration::from_secs(5)).unwrap();
    assert_eq!(engine.show(&ct.name).unwrap().init, Init::Systemd);
    engine.start(&ct.name).unwrap();
    assert_eq!(ct.booted(), "running");

    // A template without systemd cannot be asked to boot it, and nothing changes.
    let tpl = format!("noinit-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    engine.import_template(&tpl, dir.path()).unwrap();
    let spec =
        acetate_engine::ContainerSpec::builder(acetate_engine::testing::unique_name("noinit"))
            .template(&tpl)
            .init(Init::Systemd)
            .build()
            .unwrap();
    let err = engine.create(&spec).unwrap_err().to_string();
    assert!(err.contains("has no systemd"), "{err}");
    assert!(engine.show(&spec.name).is_err());
    engine.delete_template(&tpl).unwrap();
}

#[test]
fn the_host_template_leaves_the_hosts_services_out_is_fitted_and_an_old_one_is_rebuilt_when_unused()
{
    if engine("the_host_template_leaves_the_hosts_services_out").is_none() {
        return;
    }
    let engine = engine_of("host-template");
    let layout = engine.layout();
    let rootfs = layout.template_rootfs("host");
    // No link under /etc/systemd/system (the host's enabled units; the masks below lead
    // to /dev/null) nor in rc?.d, and an fstab of its own.
    let links = std::process::Command::new("find")
        .arg(rootfs.join("etc/systemd/system"))
        .arg(rootfs.join("etc/rc2.d"))
        .args(["-type", "l", "!", "-lname", "/dev/null"])
        .output()
        .unwrap();
    assert!(
        links.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&links.stdout)
    );
    let fstab = std::fs::read_to_string(rootfs.join("etc/fstab")).unwrap();
    assert!(fstab.starts_with("# Nothing to mount"), "{fstab}");
    // Fitted for containers: systemd's generators and units with nothing to do in one
    // are masked (the systemd test above boots it so, every unit running).
    for masked in [
        "system-generators/systemd-gpt-auto-generator",
        "system-generators/systemd-cryptsetup-generator",
        "system-generators/systemd-fstab-generator",
        "system/systemd-remount-fs.service",
        "system/systemd-udevd.service",
        "system/modprobe@.service",
        "system/systemd-journald-audit.socket",
    ] {
        let link = rootfs.join("etc/systemd").join(masked);
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            std::path::Path::new("/dev/null"),
            "{masked}"
        );
    }
    // Up to date with its /usr, as systemd-update-done leaves a machine after its first boot.
    for stamp in ["etc/.updated", "var/.updated"] {
        assert!(rootfs.join(stamp).is_file(), "{stamp}");
    }
    // One made by an older engine is rebuilt while no container uses it, kept otherwise.
    let info = layout.template("host").join("template.json");
    let age = |version: u64| {
        let mut t: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&info).unwrap()).unwrap();
        t["tree_version"] = version.into();
        std::fs::write(&info, t.to_string()).unwrap();
    };
    age(1);
    assert!(engine.ensure_host_template().unwrap(), "rebuilt");
    assert!(acetate_engine::template::host_is_current(layout));
    let ct = Ct::created(engine, "tpl-user", |b| b.init(Init::Minimal));
    age(1);
    assert!(!engine.ensure_host_template().unwrap(), "kept while in use");
    assert!(!acetate_engine::template::host_is_current(layout));
    drop(ct);
    assert!(engine.ensure_host_template().unwrap());
}

/// Waits (up to a minute) until container `name` has stopped by itself.
fn stopped_by_itself(engine: &acetate_engine::Engine, name: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if engine.show(name).unwrap().state == acetate_engine::State::Stopped {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn a_systemd_container_rebooted_inside_starts_again_and_one_powered_off_stays_off() {
    use acetate_engine::spec::Halt;
    let Some(engine) = engine("a_systemd_container_rebooted_inside_starts_again") else {
        return;
    };
    let ct = Ct::started(engine, "boot-reboot", |b| b);
    assert_eq!(ct.booted(), "running");
    let name = vec![ct.name.clone()];
    // Nothing to finish while it runs.
    assert!(engine.settle_halts(&name).unwrap().is_empty());
    let before = engine.show(&ct.name).unwrap().pid;
    ct.sh("systemctl reboot");
    assert!(stopped_by_itself(engine, &ct.name), "systemd went down");
    let settled = engine.settle_halts(&name).unwrap();
    assert_eq!(settled.len(), 1, "{settled:?}");
    assert_eq!(settled[0].1, Halt::Reboot);
    assert!(settled[0].2.is_ok(), "{settled:?}");
    let info = engine.show(&ct.name).unwrap();
    assert_eq!(info.state, acetate_engine::State::Running);
    assert_ne!(info.pid, before);
    assert_eq!(ct.booted(), "running");
    // Powered off inside: it stays stopped, and is not started after a host reboot.
    ct.sh("systemctl poweroff");
    assert!(stopped_by_itself(engine, &ct.name));
    let settled = engine.settle_halts(&name).unwrap();
    assert_eq!(settled.len(), 1, "{settled:?}");
    assert_eq!(settled[0].1, Halt::PowerOff);
    assert_eq!(
        engine.show(&ct.name).unwrap().state,
        acetate_engine::State::Stopped
    );
    assert!(!engine.layout().autostart(&ct.name).exists());
    assert!(engine.settle_halts(&name).unwrap().is_empty());
    // A stop from outside (systemd halts too) leaves nothing to finish.
    engine.start(&ct.name).unwrap();
    assert_eq!(ct.booted(), "running");
    engine.stop(&ct.name, Duration::from_secs(30)).unwrap();
    assert!(engine.settle_halts(&name).unwrap().is_empty());
    assert_eq!(
        engine.show(&ct.name).unwrap().state,
        acetate_engine::State::Stopped
    );
}
