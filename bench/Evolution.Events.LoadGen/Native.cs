using System.Runtime.InteropServices;

namespace Evolution.Events.LoadGen;

/// <summary>The few libc calls the reactor needs (Linux x86-64 / arm64): raw non-blocking sockets and epoll.</summary>
internal static unsafe partial class Native
{
    public const int AF_INET = 2, SOCK_STREAM = 1, SOCK_NONBLOCK = 0x800, SOCK_CLOEXEC = 0x80000;
    public const int SOL_SOCKET = 1, SO_ERROR = 4, SO_LINGER = 13, SO_RCVBUF = 8, SOL_IP = 0, IP_BIND_ADDRESS_NO_PORT = 24;
    public const int IPPROTO_TCP = 6, TCP_NODELAY = 1;
    public const int EAGAIN = 11, EINTR = 4, EINPROGRESS = 115;
    public const uint EPOLLIN = 0x1, EPOLLOUT = 0x4, EPOLLERR = 0x8, EPOLLHUP = 0x10, EPOLLRDHUP = 0x2000;
    public const int EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3, EPOLL_CLOEXEC = 0x80000;
    public const int MSG_NOSIGNAL = 0x4000;

    [StructLayout(LayoutKind.Explicit, Size = 12)]
    public struct EpollEvent
    {
        [FieldOffset(0)] public uint Events;
        [FieldOffset(4)] public ulong Data;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct SockAddrIn
    {
        public ushort Family;
        public ushort Port;   // network order
        public uint Addr;     // network order
        public ulong Zero;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Linger { public int OnOff; public int Seconds; }

    [LibraryImport("libc", SetLastError = true)] public static partial int socket(int domain, int type, int protocol);
    [LibraryImport("libc", SetLastError = true)] public static partial int bind(int fd, SockAddrIn* addr, uint len);
    [LibraryImport("libc", SetLastError = true)] public static partial int connect(int fd, SockAddrIn* addr, uint len);
    [LibraryImport("libc", SetLastError = true)] public static partial int setsockopt(int fd, int level, int opt, void* val, uint len);
    [LibraryImport("libc", SetLastError = true)] public static partial int getsockopt(int fd, int level, int opt, void* val, uint* len);
    [LibraryImport("libc", SetLastError = true)] public static partial nint recv(int fd, byte* buf, nint len, int flags);
    [LibraryImport("libc", SetLastError = true)] public static partial nint send(int fd, byte* buf, nint len, int flags);
    [LibraryImport("libc", SetLastError = true)] public static partial int close(int fd);
    [LibraryImport("libc", SetLastError = true)] public static partial int epoll_create1(int flags);
    [LibraryImport("libc", SetLastError = true)] public static partial int epoll_ctl(int epfd, int op, int fd, EpollEvent* ev);
    [LibraryImport("libc", SetLastError = true)] public static partial int epoll_wait(int epfd, EpollEvent* events, int maxEvents, int timeout);
    [LibraryImport("libc")] public static partial long sysconf(int name);
    [LibraryImport("libc")] public static partial int usleep(uint micros);

    public static int Errno => Marshal.GetLastPInvokeError();

    public static uint Ipv4NetworkOrder(string dotted)
    {
        var p = dotted.Split('.');
        if (p.Length != 4) throw new ArgumentException($"not an IPv4 address: {dotted}");
        // sin_addr holds the bytes in network order; on a little-endian host that is a1 | a2<<8 | a3<<16 | a4<<24.
        return uint.Parse(p[0]) | (uint.Parse(p[1]) << 8) | (uint.Parse(p[2]) << 16) | (uint.Parse(p[3]) << 24);
    }

    public static ushort PortNetworkOrder(int port) => (ushort)(((port & 0xFF) << 8) | ((port >> 8) & 0xFF));
}
