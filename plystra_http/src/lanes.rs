//! Serving lanes: the server's connections are served by SERVER_THREADS threads, each running its own
//! single-threaded tokio runtime with its own share of the primary's pool (`AppState::lane`). An accepted
//! connection is handed to the lane serving the fewest connections, and from then on everything it causes runs
//! on that lane's thread: hyper's parsing, the handlers, and the I/O of the pooled PostgreSQL connections its
//! requests use (a tokio-postgres connection is driven by a task on the runtime that opened it, and a lane's
//! pool is opened only from that lane).
//!
//! Why: on one multi-threaded runtime a decision's request, its statement and the statement's answer were
//! handled by whichever workers were free, and every hand-over between two of them was a futex wake-up and a
//! context switch; on a small machine shared with PostgreSQL those were the front's largest cost
//! (`bench/results/ab-front-lanes.md`). A lane that finds every connection of its own share busy borrows an
//! idle one from another lane (`db::checkout`), so splitting the pool does not refuse work the whole pool
//! could serve.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::mpsc;

type Handed = (std::net::TcpStream, SocketAddr);

/// What bounds a connection, whoever opened it (no credential is known yet): the server's connections are
/// file descriptors, and a client that opens them and sends nothing, or sends an HTTP/2 preface and then
/// nothing, would otherwise keep them for good.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionRules {
    /// HTTP_READ_HEADER_TIMEOUT: a new connection must send its first byte within this, else it is closed; and
    /// hyper's deadline for a request's headers, which starts only once a request has begun (it also bounds how
    /// long an idle HTTP/1.1 keep-alive connection waits for its next request).
    pub header: Duration,
    /// A connection that has read and written nothing for this long is closed (HTTP_IDLE_TIMEOUT): an idle
    /// HTTP/2 connection has no other deadline (an idle HTTP/1.1 one meets the header deadline first).
    pub idle: Duration,
    /// At most this many connections are open at once (SERVER_MAX_CONNECTIONS); one accepted past it is closed
    /// at once, so the process keeps descriptors for its database connections and its open connections.
    pub max_open: usize,
}

/// The running lanes: where accepted connections go, and the threads to wait for at shutdown.
pub struct Lanes {
    senders: Vec<mpsc::UnboundedSender<Handed>>,
    /// Connections each lane is serving (counted up here, down by the lane when one closes).
    open: Arc<[AtomicUsize]>,
    threads: Vec<std::thread::JoinHandle<()>>,
    next: usize,
    max_open: usize,
}

impl Lanes {
    /// One thread a router (each router carries its lane's state), each serving what [`Lanes::hand`] gives it
    /// until [`Lanes::finish`].
    pub fn start(routers: Vec<Router>, rules: ConnectionRules, dispatch: tracing::Dispatch) -> std::io::Result<Lanes> {
        let open: Arc<[AtomicUsize]> = routers.iter().map(|_| AtomicUsize::new(0)).collect();
        let mut lanes =
            Lanes { senders: Vec::new(), open: open.clone(), threads: Vec::new(), next: 0, max_open: rules.max_open };
        for (index, router) in routers.into_iter().enumerate() {
            let (tx, rx) = mpsc::unbounded_channel();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (open, dispatch) = (open.clone(), dispatch.clone());
            let thread = std::thread::Builder::new().name(format!("plystra-lane-{index}")).spawn(move || {
                runtime.block_on(serve(router, rx, rules, dispatch, open, index));
            })?;
            lanes.senders.push(tx);
            lanes.threads.push(thread);
        }
        Ok(lanes)
    }

    /// Gives an accepted connection to the lane serving the fewest (the first such after the last one chosen,
    /// so that lanes with equal counts take turns). A lane whose thread has stopped (it cannot, short of a bug)
    /// refuses it, and the next lane by load is tried.
    pub fn hand(&mut self, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let n = self.senders.len();
        let open: usize = self.open.iter().map(|o| o.load(Ordering::Relaxed)).sum();
        if open >= self.max_open {
            // Closed unread: the clients already connected keep being served.
            crate::metrics::connection_refused();
            return;
        }
        let mut order: Vec<usize> = (0..n).map(|k| (self.next + k) % n).collect();
        order.sort_by_key(|&i| self.open[i].load(Ordering::Relaxed)); // stable: ties keep their turn
                                                                      // Out of the accepting runtime's reactor, into the lane's (it registers it there).
        let mut handed = match stream.into_std() {
            Ok(stream) => (stream, peer),
            Err(e) => {
                tracing::warn!(error = %e, "handing a connection to a serving thread failed");
                return;
            }
        };
        for lane in order {
            self.open[lane].fetch_add(1, Ordering::Relaxed);
            match self.senders[lane].send(handed) {
                Ok(()) => {
                    self.next = (lane + 1) % n;
                    return;
                }
                Err(mpsc::error::SendError(refused)) => {
                    self.open[lane].fetch_sub(1, Ordering::Relaxed);
                    tracing::error!(lane, "a serving thread has stopped");
                    handed = refused;
                }
            }
        }
        tracing::error!("no serving thread is running; the connection is closed");
    }

    /// Stops handing out connections and waits until every lane has finished its in-flight requests.
    pub async fn finish(self) {
        drop(self.senders);
        for thread in self.threads {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// A lane: serves each connection handed to it on this thread's runtime, then, once no more come, lets the
/// in-flight requests finish (graceful shutdown).
///
/// With tracing on (`dispatch` is the server's), every connection runs under the server's own tracing
/// dispatcher, and so do the tasks hyper spawns for it (HTTP/2 streams): a span must be closed under the
/// dispatcher that made it, and a response body outlives the handler (it is written, then dropped, by the
/// connection).
async fn serve(
    router: Router,
    mut handed: mpsc::UnboundedReceiver<Handed>,
    rules: ConnectionRules,
    dispatch: tracing::Dispatch,
    open: Arc<[AtomicUsize]>,
    lane: usize,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;
    use tower::Service;
    use tracing::instrument::WithSubscriber;

    let mut builder = Builder::new(DispatchExecutor(dispatch.clone()));
    builder.http1().timer(TokioTimer::new()).header_read_timeout(rules.header);
    builder.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    while let Some((stream, peer)) = handed.recv().await {
        let closed = Closed(open.clone(), lane);
        let stream = match tokio::net::TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "a serving thread could not take a connection");
                continue;
            }
        };
        let service = match make_service.call(peer).await {
            Ok(s) => s,
            Err(never) => match never {},
        };
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        tokio::spawn(
            async move {
                // Nothing is parsed, and no request or connection state is kept, until the first byte comes.
                let mut first = [0u8; 1];
                if !matches!(tokio::time::timeout(rules.header, stream.peek(&mut first)).await, Ok(Ok(1..))) {
                    drop(closed);
                    return;
                }
                let (stream, last) = Watched::new(stream);
                let connection =
                    builder.serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
                let connection = watcher.watch(connection.into_owned());
                tokio::select! {
                    _ = connection => {}
                    () = idle_for(&last, rules.idle) => {}
                }
                drop(closed);
            }
            .with_subscriber(dispatch.clone()),
        );
    }
    graceful.shutdown().await;
}

/// Returns once the connection whose last I/O `last` records has done none for `idle`.
async fn idle_for(last: &LastIo, idle: Duration) {
    loop {
        let quiet = last.quiet_for();
        if quiet >= idle {
            return;
        }
        tokio::time::sleep(idle - quiet).await;
    }
}

/// When a connection last read or wrote a byte, as milliseconds since its [`Watched`] was made.
#[derive(Clone)]
struct LastIo(Arc<(std::time::Instant, std::sync::atomic::AtomicU64)>);

impl LastIo {
    fn touch(&self) {
        let now = self.0 .0.elapsed().as_millis() as u64;
        self.0 .1.store(now, Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        let now = self.0 .0.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.0 .1.load(Ordering::Relaxed)))
    }
}

/// A connection's stream that records its last I/O (for the idle deadline).
struct Watched {
    stream: tokio::net::TcpStream,
    last: LastIo,
}

impl Watched {
    fn new(stream: tokio::net::TcpStream) -> (Watched, LastIo) {
        let last = LastIo(Arc::new((std::time::Instant::now(), std::sync::atomic::AtomicU64::new(0))));
        (Watched { stream, last: last.clone() }, last)
    }
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.last.touch();
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.stream).poll_write(cx, data);
        if matches!(polled, std::task::Poll::Ready(Ok(1..))) {
            self.last.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, data);
        if matches!(polled, std::task::Poll::Ready(Ok(1..))) {
            self.last.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Counts a lane's connection down when it closes, however its task ends.
struct Closed(Arc<[AtomicUsize]>, usize);

impl Drop for Closed {
    fn drop(&mut self) {
        self.0[self.1].fetch_sub(1, Ordering::Relaxed);
    }
}

/// hyper's executor for the tasks of a connection (HTTP/2 streams): the lane's runtime, under the server's
/// dispatcher.
#[derive(Clone)]
struct DispatchExecutor(tracing::Dispatch);

impl<F> hyper::rt::Executor<F> for DispatchExecutor
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        use tracing::instrument::WithSubscriber;
        tokio::spawn(future.with_subscriber(self.0.clone()));
    }
}

/// How many lanes serve, and each lane's share of DATABASE_MAX_OPEN_CONNS: SERVER_THREADS lanes, but no more
/// than there are connections (a lane without one could only borrow), the shares adding up to the whole.
pub fn pool_shares(threads: usize, pool_size: usize) -> Vec<usize> {
    let lanes = threads.clamp(1, pool_size.max(1));
    (0..lanes).map(|i| pool_size / lanes + usize::from(i < pool_size % lanes)).collect()
}

#[cfg(test)]
mod tests {
    use super::{pool_shares, ConnectionRules, Lanes};
    use std::time::Duration;

    /// An HTTP/1.1 connection to `addr` (its requests are served in turn by one lane).
    async fn connect(addr: std::net::SocketAddr) -> hyper::client::conn::http1::SendRequest<String> {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        sender
    }

    async fn accept_into(listener: &tokio::net::TcpListener, lanes: &mut Lanes) {
        let (stream, peer) = listener.accept().await.unwrap();
        lanes.hand(stream, peer);
    }

    /// The name of the thread that served a request on `sender`.
    async fn served_by(sender: &mut hyper::client::conn::http1::SendRequest<String>) -> String {
        use http_body_util::BodyExt;
        sender.ready().await.unwrap();
        let request = axum::http::Request::get("http://lanes/").body(String::new()).unwrap();
        let body = sender.send_request(request).await.unwrap().into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    /// Connections go to the lane serving the fewest, lanes with equal counts taking turns, and every request
    /// of a connection is served on its lane's thread; a closed connection counts down, so its lane is the
    /// next one chosen.
    #[tokio::test]
    async fn connections_go_to_the_least_busy_lane_and_stay_on_its_thread() {
        let router = || {
            axum::Router::new()
                .route("/", axum::routing::get(|| async { std::thread::current().name().unwrap_or("").to_string() }))
        };
        let rules = ConnectionRules { header: Duration::from_secs(5), idle: Duration::from_secs(60), max_open: 100 };
        let mut lanes = Lanes::start(vec![router(), router()], rules, tracing::Dispatch::none()).expect("lanes start");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut connections = Vec::new();
        for _ in 0..4 {
            let (sender, ()) = tokio::join!(connect(addr), accept_into(&listener, &mut lanes));
            connections.push(sender);
        }
        let mut seen = Vec::new();
        for sender in &mut connections {
            let first = served_by(sender).await;
            for _ in 0..3 {
                assert_eq!(served_by(sender).await, first, "a connection's requests stay on its lane");
            }
            seen.push(first);
        }
        assert_eq!(seen, ["plystra-lane-0", "plystra-lane-1", "plystra-lane-0", "plystra-lane-1"]);

        // Lane 1 now serves one connection fewer than lane 0: the next connection goes there, whoever's turn.
        drop(connections.remove(3));
        let closed = std::time::Instant::now();
        while lanes.open[1].load(std::sync::atomic::Ordering::Relaxed) != 1 {
            assert!(closed.elapsed() < Duration::from_secs(5), "the closed connection was never counted down");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        lanes.next = 0;
        let (mut sender, ()) = tokio::join!(connect(addr), accept_into(&listener, &mut lanes));
        assert_eq!(served_by(&mut sender).await, "plystra-lane-1");
        drop((sender, connections));
        lanes.finish().await;
    }

    #[test]
    fn the_shares_add_up_to_the_pool_and_no_lane_is_without_a_connection() {
        assert_eq!(pool_shares(2, 20), vec![10, 10]);
        assert_eq!(pool_shares(3, 20), vec![7, 7, 6]);
        assert_eq!(pool_shares(8, 2), vec![1, 1]);
        assert_eq!(pool_shares(1, 5), vec![5]);
        for threads in 1..20 {
            for size in 1..40 {
                let shares = pool_shares(threads, size);
                assert_eq!(shares.iter().sum::<usize>(), size, "{threads} threads, {size} connections");
                assert!(shares.iter().all(|&s| s >= 1), "{threads} threads, {size} connections");
                assert_eq!(shares.len(), threads.min(size));
            }
        }
    }
}
