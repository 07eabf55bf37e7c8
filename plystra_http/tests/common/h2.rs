//! An HTTP/2 client connection for the front's tests (kept out of `common`, which plystractl's tests share and which
//! does not depend on hyper). Include with `#[path = "common/h2.rs"] mod h2;`.

/// One HTTP/2 connection (prior knowledge, as h2c clients speak it) sending bodies of type `B`: its requests are
/// served concurrently, all by the serving lane the connection was handed to.
pub async fn h2_connection<B>(addr: std::net::SocketAddr) -> hyper::client::conn::http2::SendRequest<B>
where
    B: hyper::body::Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    sender
}
