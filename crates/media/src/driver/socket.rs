//! The socket I/O the driver needs, behind a small trait: one datagram in, one out. A
//! batching implementation (recvmmsg/sendmmsg, GSO) or a test double plugs in here.

use std::fmt::Debug;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use tokio::io::ReadBuf;

/// A bound UDP socket as the call driver uses it.
pub trait DatagramSocket: Send + Sync + Debug + Unpin + 'static {
    /// Receives one datagram into `buf`, or registers the task for wake-up.
    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>>;

    /// Sends one datagram without waiting; an error (full buffer) drops it, as UDP would.
    fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize>;

    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// Binds the sockets of new calls.
pub trait SocketBinder: Send + Sync + Debug + 'static {
    type Socket: DatagramSocket;

    fn bind(&self, addr: SocketAddr) -> io::Result<Self::Socket>;
}

/// A tokio UDP socket, one datagram per system call.
#[derive(Debug)]
pub struct TokioUdp(tokio::net::UdpSocket);

impl DatagramSocket for TokioUdp {
    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let mut read = ReadBuf::new(buf);
        match self.0.poll_recv_from(cx, &mut read) {
            Poll::Ready(Ok(from)) => Poll::Ready(Ok((read.filled().len(), from))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.0.try_send_to(buf, target)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// Binds [`TokioUdp`] sockets. Must be used inside a tokio runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioBinder;

impl SocketBinder for TokioBinder {
    type Socket = TokioUdp;

    fn bind(&self, addr: SocketAddr) -> io::Result<TokioUdp> {
        let socket = std::net::UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        Ok(TokioUdp(tokio::net::UdpSocket::from_std(socket)?))
    }
}
