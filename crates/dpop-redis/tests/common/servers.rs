//! Throw-away `redis-server` processes on loopback for one test: plain with extra arguments,
//! TLS with a CA made at test time, a three-master Cluster. Killed when dropped.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections, or a Cluster to agree.
const STARTUP: Duration = Duration::from_secs(20);

/// Whether `redis-server` and `redis-cli` can be run; see `dpop_test_support::skip_or_fail`.
pub fn redis_server_or_skip(test: &str) -> bool {
    let missing: Vec<&str> = ["redis-server", "redis-cli"]
        .into_iter()
        .filter(|binary| {
            !Command::new(binary)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
        .collect();
    missing.is_empty() || dpop_test_support::skip_or_fail(test, &format!("cannot run {missing:?}"))
}

/// Skips the calling test (returns from it) when `redis-server` cannot be run.
#[macro_export]
macro_rules! require_redis_server {
    () => {
        if !common::servers::redis_server_or_skip(&common::test_name({
            fn here() {}
            std::any::type_name_of_val(&here)
        })) {
            return;
        }
    };
}

/// Running servers and their scratch directory; all gone when dropped.
pub struct Servers {
    children: Vec<Child>,
    dir: PathBuf,
    /// The client ports, in start order.
    pub ports: Vec<u16>,
}

impl Servers {
    fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let unique = RandomState::new().hash_one((std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
        let dir = std::env::temp_dir().join(format!("dpop-redis-test-{unique:016x}"));
        std::fs::create_dir_all(&dir).unwrap();
        Self { children: Vec::new(), dir, ports: Vec::new() }
    }

    pub fn port(&self) -> u16 {
        self.ports[0]
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port())
    }

    pub fn urls(&self) -> Vec<String> {
        self.ports.iter().map(|port| format!("redis://127.0.0.1:{port}")).collect()
    }

    fn spawn(&mut self, port: u16, args: &[String]) {
        let log = std::fs::File::create(self.dir.join(format!("server-{port}.log"))).unwrap();
        let child = Command::new("redis-server")
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .arg("--daemonize")
            .arg("no")
            .arg("--dir")
            .arg(&self.dir)
            .args(args)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(child);
        self.ports.push(port);
    }

    /// Kills every server (the directory stays until drop).
    pub fn kill(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn log(&self, port: u16) -> String {
        std::fs::read_to_string(self.dir.join(format!("server-{port}.log"))).unwrap_or_default()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port that is free now (and, for a Cluster node, so is its bus port, + 10000).
pub fn free_port(cluster: bool) -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for attempt in 0..1000u64 {
        let random =
            RandomState::new().hash_one((std::process::id(), attempt, COUNTER.fetch_add(1, Ordering::Relaxed)));
        let port = 20_000 + u16::try_from(random % 20_000).unwrap();
        let free = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free(port) && (!cluster || free(port + 10_000)) {
            return port;
        }
    }
    panic!("no free loopback port")
}

/// Waits until a plain server on `port` answers `PING`.
fn wait_for_ping(servers: &Servers, port: u16) {
    let start = Instant::now();
    loop {
        let answered = TcpStream::connect(("127.0.0.1", port)).and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(1)))?;
            stream.write_all(b"PING\r\n")?;
            let mut reply = [0u8; 7];
            stream.read_exact(&mut reply)?;
            Ok(&reply == b"+PONG\r\n")
        });
        if answered.unwrap_or(false) {
            return;
        }
        assert!(start.elapsed() < STARTUP, "redis-server on {port} did not start: {}", servers.log(port));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until something accepts TCP connections on `port`.
fn wait_for_listener(servers: &Servers, port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < STARTUP, "redis-server on {port} did not start: {}", servers.log(port));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One plain server with extra arguments (`["--maxmemory-policy", "allkeys-lru"]`).
pub fn plain(args: &[&str]) -> Servers {
    plain_on(free_port(false), args)
}

/// One plain server on `port` with extra arguments.
pub fn plain_on(port: u16, args: &[&str]) -> Servers {
    let mut servers = Servers::new();
    let mut all = vec!["--port".to_owned(), port.to_string()];
    all.extend(args.iter().map(|&arg| arg.to_owned()));
    servers.spawn(port, &all);
    wait_for_ping(&servers, port);
    servers
}

/// A certificate authority made for one test, and a server certificate it signed for
/// `127.0.0.1` and `localhost`.
pub struct TestCa {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

impl TestCa {
    pub fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "dpop-redis test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "dpop-redis test server");
        let server_cert = params.signed_by(&server_key, &issuer).unwrap();
        Self { ca_pem: ca_cert.pem(), server_cert_pem: server_cert.pem(), server_key_pem: server_key.serialize_pem() }
    }
}

/// One TLS-only server (no plain port) with a certificate from `ca`.
pub fn tls(ca: &TestCa) -> Servers {
    let port = free_port(false);
    let mut servers = Servers::new();
    let cert = servers.write("server.crt", &ca.server_cert_pem);
    let key = servers.write("server.key", &ca.server_key_pem);
    let ca_file = servers.write("ca.crt", &ca.ca_pem);
    let args: Vec<String> = [
        "--port",
        "0",
        "--tls-port",
        &port.to_string(),
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca_file,
        "--tls-auth-clients",
        "no",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    servers.spawn(port, &args);
    wait_for_listener(&servers, port);
    servers
}

/// Three masters, slots spread by `redis-cli --cluster create`, no replicas; `args[i]` are
/// extra arguments of node `i`.
pub fn cluster(args: [&[&str]; 3]) -> Servers {
    let mut servers = Servers::new();
    for node_args in args {
        let port = free_port(true);
        let mut all: Vec<String> = vec![
            "--port".to_owned(),
            port.to_string(),
            "--cluster-enabled".to_owned(),
            "yes".to_owned(),
            "--cluster-config-file".to_owned(),
            format!("nodes-{port}.conf"),
        ];
        all.extend(node_args.iter().map(|&arg| arg.to_owned()));
        servers.spawn(port, &all);
    }
    for port in servers.ports.clone() {
        wait_for_ping(&servers, port);
    }
    let nodes: Vec<String> = servers.ports.iter().map(|port| format!("127.0.0.1:{port}")).collect();
    let output = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .unwrap();
    assert!(output.status.success(), "redis-cli --cluster create failed: {}", String::from_utf8_lossy(&output.stdout));
    let start = Instant::now();
    for port in servers.ports.clone() {
        loop {
            let info = Command::new("redis-cli").args(["-p", &port.to_string(), "cluster", "info"]).output().unwrap();
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            assert!(start.elapsed() < STARTUP, "the Cluster did not become ok");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    servers
}
