using System.Net.Sockets;
using System.Text;

namespace Evolution.Events.Testing;

/// <summary>Raw HTTP/1.1 over a socket, for tests that need the exact bytes (split heads, pipelining, garbage).</summary>
public static class RawHttp
{
    /// <summary>
    /// Writes <paramref name="request"/> (in writes of <paramref name="chunk"/> bytes 1 ms apart; 0: one write), then
    /// reads until the peer closes or resets, or until <paramref name="until"/> says the text read so far is enough.
    /// Bounded: 20 s in all.
    /// </summary>
    public static async Task<string> SendAsync(NetworkStream stream, string request, int chunk = 0, Func<string, bool>? until = null)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var bytes = Encoding.Latin1.GetBytes(request);
        var size = chunk <= 0 ? bytes.Length : chunk;
        for (var i = 0; i < bytes.Length; i += size)
        {
            await stream.WriteAsync(bytes.AsMemory(i, Math.Min(size, bytes.Length - i)), timeout.Token);
            if (chunk > 0)
                await Task.Delay(1, timeout.Token);
        }

        var received = new StringBuilder();
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var n = await stream.ReadAsync(buffer, timeout.Token);
                if (n == 0)
                    break;
                received.Append(Encoding.Latin1.GetString(buffer, 0, n));
                if (until?.Invoke(received.ToString()) == true)
                    break;
            }
        }
        catch (IOException)
        {
            // a reset after the answer (e.g. Kestrel closing on a TLS hello)
        }

        return received.ToString();
    }

    /// <summary>Whether a whole response head has arrived.</summary>
    public static bool HasHead(string text) => text.Contains("\r\n\r\n", StringComparison.Ordinal);
}
