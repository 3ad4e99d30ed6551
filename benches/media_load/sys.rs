//! The few system calls the load generator needs beyond std: batched receives with the
//! kernel's receive timestamps (so the generator's own scheduling never counts as relay
//! latency), a large receive buffer, the real-time clock the timestamps use, and CPU times.
#![allow(unsafe_code, reason = "libc socket and clock calls, quarantined in this module")]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::Duration;

const BUF: usize = 512;
const CMSG: usize = 64;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

fn set_int(
    socket: &UdpSocket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid socket descriptor and a pointer to a live c_int of the size passed.
    let ret = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    check(ret).map(|_| ())
}

/// A large receive buffer (beyond `rmem_max` when running as root), and kernel receive
/// timestamps on every datagram.
pub(crate) fn prepare(socket: &UdpSocket, rcvbuf: i32) -> io::Result<()> {
    if set_int(socket, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, rcvbuf).is_err() {
        set_int(socket, libc::SOL_SOCKET, libc::SO_RCVBUF, rcvbuf)?;
    }
    set_int(socket, libc::SOL_SOCKET, libc::SO_SNDBUF, rcvbuf)?;
    set_int(socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// CLOCK_REALTIME in nanoseconds: the clock of SO_TIMESTAMPNS.
pub(crate) fn realtime_ns() -> u64 {
    // SAFETY: clock_gettime writes one timespec into the zeroed value we own.
    let mut ts: libc::timespec = unsafe { zeroed() };
    // SAFETY: as above; CLOCK_REALTIME always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// User + system CPU time of this process.
pub(crate) fn own_cpu() -> Duration {
    // SAFETY: getrusage fills the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// User + system CPU time of every thread of process `pid`, from /proc.
pub(crate) fn process_cpu(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the name.
    let total = ticks(11) + ticks(12);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_nanos(total * 1_000_000_000 / hz))
}

/// Busy CPU time of the whole machine (all cores: user, nice, system, irq, softirq, steal).
pub(crate) fn machine_busy() -> io::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().unwrap_or("");
    let f: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    let busy = [0, 1, 2, 5, 6, 7].iter().map(|&i| f.get(i).copied().unwrap_or(0)).sum::<u64>();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_nanos(busy * 1_000_000_000 / hz))
}

/// One datagram of a batch.
pub(crate) struct Datagram<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) from_port: u16,
    /// Kernel receive time, CLOCK_REALTIME ns (0 if the kernel gave none).
    pub(crate) rx_ns: u64,
}

/// Buffers for `recvmmsg`.
pub(crate) struct Batch {
    bufs: Box<[[u8; BUF]]>,
    addrs: Box<[libc::sockaddr_in]>,
    cmsgs: Box<[[u8; CMSG]]>,
    iovs: Box<[libc::iovec]>,
    msgs: Box<[libc::mmsghdr]>,
}

impl Batch {
    pub(crate) fn new(n: usize) -> Batch {
        // SAFETY: these C structs are plain data for which all-zero is a valid value.
        let (addr, iov, msg) = unsafe { (zeroed(), zeroed(), zeroed()) };
        Batch {
            bufs: vec![[0u8; BUF]; n].into_boxed_slice(),
            addrs: vec![addr; n].into_boxed_slice(),
            cmsgs: vec![[0u8; CMSG]; n].into_boxed_slice(),
            iovs: vec![iov; n].into_boxed_slice(),
            msgs: vec![msg; n].into_boxed_slice(),
        }
    }

    /// Receives up to the batch size without waiting (`WouldBlock` when there is nothing).
    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let n = self.msgs.len();
        for i in 0..n {
            self.iovs[i] = libc::iovec { iov_base: self.bufs[i].as_mut_ptr().cast(), iov_len: BUF };
            let hdr = &mut self.msgs[i].msg_hdr;
            hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_in).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            hdr.msg_iov = &mut self.iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = self.cmsgs[i].as_mut_ptr().cast();
            hdr.msg_controllen = CMSG;
            hdr.msg_flags = 0;
            self.msgs[i].msg_len = 0;
        }
        // SAFETY: every header points into buffers owned by `self`, sized as declared, and
        // they stay alive and unmoved for the duration of the call.
        let got = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.msgs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        check(got).map(|n| n as usize)
    }

    pub(crate) fn get(&self, i: usize) -> Datagram<'_> {
        let msg = &self.msgs[i];
        let len = (msg.msg_len as usize).min(BUF);
        let from_port = u16::from_be(self.addrs[i].sin_port);
        let mut rx_ns = 0;
        let hdr = &msg.msg_hdr;
        // SAFETY: the control buffer was filled by the kernel for this message; the CMSG
        // macros walk it within `msg_controllen`.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SO_TIMESTAMPNS
                {
                    let ts =
                        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>());
                    rx_ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
                }
                cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
            }
        }
        Datagram { data: &self.bufs[i][..len], from_port, rx_ns }
    }
}

/// Datagrams to send from one socket with `sendmmsg`, each to its own destination.
pub(crate) struct SendBatch {
    bufs: Box<[[u8; BUF]]>,
    lens: Box<[usize]>,
    addrs: Box<[libc::sockaddr_in]>,
    iovs: Box<[libc::iovec]>,
    msgs: Box<[libc::mmsghdr]>,
    len: usize,
}

impl SendBatch {
    pub(crate) fn new(n: usize) -> SendBatch {
        // SAFETY: these C structs are plain data for which all-zero is a valid value.
        let (addr, iov, msg) = unsafe { (zeroed(), zeroed(), zeroed()) };
        SendBatch {
            bufs: vec![[0u8; BUF]; n].into_boxed_slice(),
            lens: vec![0; n].into_boxed_slice(),
            addrs: vec![addr; n].into_boxed_slice(),
            iovs: vec![iov; n].into_boxed_slice(),
            msgs: vec![msg; n].into_boxed_slice(),
            len: 0,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == self.msgs.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Queues a datagram to 127.0.0.1:`port`; `fill` writes it and returns its length.
    pub(crate) fn push(&mut self, port: u16, fill: impl FnOnce(&mut [u8]) -> usize) {
        let i = self.len;
        self.lens[i] = fill(&mut self.bufs[i]).min(BUF);
        self.addrs[i] = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be() },
            sin_zero: [0; 8],
        };
        self.len += 1;
    }

    /// Sends what is queued and empties the batch; returns how many went.
    pub(crate) fn send(&mut self, socket: &UdpSocket) -> usize {
        let n = self.len;
        for i in 0..n {
            self.iovs[i] =
                libc::iovec { iov_base: self.bufs[i].as_mut_ptr().cast(), iov_len: self.lens[i] };
            let hdr = &mut self.msgs[i].msg_hdr;
            hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_in).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            hdr.msg_iov = &mut self.iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = std::ptr::null_mut();
            hdr.msg_controllen = 0;
            hdr.msg_flags = 0;
        }
        let mut sent = 0;
        while sent < n {
            // SAFETY: headers `sent..n` point into buffers owned by `self`, sized as declared,
            // alive and unmoved during the call.
            let r = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    self.msgs[sent..].as_mut_ptr(),
                    (n - sent) as libc::c_uint,
                    0,
                )
            };
            if r <= 0 {
                break;
            }
            sent += r as usize;
        }
        self.len = 0;
        sent
    }
}
