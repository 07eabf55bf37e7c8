//! A counting proxy between a test server and the test database: it counts the round trips the server's
//! connections make (each extended-protocol exchange ends with a Sync message, each simple query is one Query
//! message), so that a test can prove a request costs one round trip (`round_trips.rs`, `authz_batch.rs`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::{db, start_server, TestServer};

/// Copies the frontend's side of one connection to PostgreSQL, counting the messages that make the server
/// answer and wait (Sync 'S', Query 'Q'): the untyped startup packet first, then typed messages.
fn pump_frontend(mut from: TcpStream, mut to: TcpStream, n: &AtomicUsize) -> std::io::Result<()> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len)?;
    let mut startup = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
    from.read_exact(&mut startup)?;
    to.write_all(&len)?;
    to.write_all(&startup)?;
    loop {
        let mut header = [0u8; 5];
        from.read_exact(&mut header)?;
        let size = (u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize).saturating_sub(4);
        let mut body = vec![0u8; size];
        from.read_exact(&mut body)?;
        if matches!(header[0], b'S' | b'Q') {
            n.fetch_add(1, Ordering::SeqCst);
        }
        to.write_all(&header)?;
        to.write_all(&body)?;
    }
}

/// A proxy on 127.0.0.1 in front of `target`, and its count of round trips.
pub fn start_proxy(target: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let round_trips = Arc::new(AtomicUsize::new(0));
    let n = round_trips.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(target) else { continue };
            let (client_in, server_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let n = n.clone();
            std::thread::spawn(move || {
                let _ = pump_frontend(client_in, server_out, &n);
            });
            std::thread::spawn(move || {
                let (mut server, mut client) = (server, client);
                let _ = std::io::copy(&mut server, &mut client);
            });
        }
    });
    (addr, round_trips)
}

/// A server whose one pooled connection goes through a counting proxy to the test database.
pub fn proxied_server() -> (TestServer, Arc<AtomicUsize>) {
    let url: tokio_postgres::Config = db().url.parse().unwrap();
    let port = url.get_ports().first().copied().unwrap_or(5432);
    let (proxy, count) = start_proxy(SocketAddr::from(([127, 0, 0, 1], port)));
    let proxied = db().url.replacen(&format!(":{port}/"), &format!(":{}/", proxy.port()), 1);
    assert_ne!(proxied, db().url, "the test database URL names its port");
    let server = start_server(&[("DATABASE_URL", &proxied), ("DATABASE_MAX_OPEN_CONNS", "1")]);
    (server, count)
}
