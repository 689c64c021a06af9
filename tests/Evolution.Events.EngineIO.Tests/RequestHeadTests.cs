using System.Buffers;
using System.Text;
using Evolution.Events.EngineIO.Hosting;

namespace Evolution.Events.EngineIO.Tests;

/// <summary>
/// The raw path's parse of a connection's first request head: what it takes, what it leaves to Kestrel, and what a
/// connect storm costs in it (strings a handshake repeats come from the shared table, not from the bytes again).
/// The table is process-wide and lossy, so these tests run alone, like <see cref="EngineRequestSharingTests"/>.
/// </summary>
[Collection(AttackCollection.Name)]
public class RequestHeadTests
{
    private const string Upgrade =
        "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: gateway.example:8080\r\nUpgrade: websocket\r\n"
        + "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: KEY\r\n"
        + "User-Agent: Mozilla/5.0 (X11; Linux x86_64) request-head-test\r\nOrigin: https://app.example\r\n\r\n";

    private static RequestHead.Verdict Parse(string text, out RequestHead? head) =>
        RequestHead.TryParse(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(text)), 8192, 32768,
            path => path.StartsWith("/engine.io", StringComparison.Ordinal), out head, out _);

    [Fact]
    public void Two_heads_share_what_they_repeat_and_keep_their_own_key()
    {
        Assert.Equal(RequestHead.Verdict.Ours, Parse(Upgrade.Replace("KEY", "dGhlIHNhbXBsZSBub25jZQ==", StringComparison.Ordinal), out var a));
        Assert.Equal(RequestHead.Verdict.Ours, Parse(Upgrade.Replace("KEY", "x3JJHMbDL1EzLkh9GBhXDw==", StringComparison.Ordinal), out var b));

        Assert.Equal("/engine.io/?EIO=4&transport=websocket", a!.RawTarget);
        Assert.Equal("/engine.io/", a.Path);
        Assert.Equal("?EIO=4&transport=websocket", a.QueryString);
        Assert.Equal("gateway.example:8080", a.Headers["Host"]);
        Assert.Equal("Mozilla/5.0 (X11; Linux x86_64) request-head-test", a.Headers["User-Agent"]);
        Assert.Same(a.RawTarget, b!.RawTarget);
        Assert.Same(a.Path, b.Path);
        Assert.Same(a.QueryString, b.QueryString);
        Assert.Same(a.Headers["Host"].ToString(), b.Headers["Host"].ToString());
        Assert.Same(a.Headers["User-Agent"].ToString(), b.Headers["User-Agent"].ToString());
        Assert.Same(a.Headers.Keys.First(), b.Headers.Keys.First());
        Assert.Equal("dGhlIHNhbXBsZSBub25jZQ==", a.Headers["Sec-WebSocket-Key"]);
        Assert.Equal("x3JJHMbDL1EzLkh9GBhXDw==", b.Headers["Sec-WebSocket-Key"]);
    }

    [Fact]
    public void A_repeated_head_costs_its_dictionary_and_its_key_only()
    {
        // warm: the table holds the repeated strings, the parse's code is compiled
        for (var i = 0; i < 3; i++)
        {
            Parse(Upgrade.Replace("KEY", "dGhlIHNhbXBsZSBub25jZQ==", StringComparison.Ordinal), out _);
        }

        var bytes = new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(Upgrade.Replace("KEY", "x3JJHMbDL1EzLkh9GBhXDw==", StringComparison.Ordinal)));
        Func<string, bool> served = path => true;
        var before = GC.GetAllocatedBytesForCurrentThread();
        var verdict = RequestHead.TryParse(bytes, 8192, 32768, served, out var head, out _);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(RequestHead.Verdict.Ours, verdict);
        Assert.Equal(7, head!.Headers.Count);
        // the head, its header dictionary sized once for its 7 headers, the key: 480 bytes. With a string per line, name
        // and value made from the bytes every time and a dictionary grown three times, it was 3,008.
        Assert.True(allocated < 1_000, $"{allocated} bytes allocated by a repeated head");
    }

    [Theory]
    [InlineData("Connection: keep-alive, Upgrade", true)]
    [InlineData("Connection:  upgrade ", true)]
    [InlineData("Connection: keep-alive", false)]
    [InlineData("Connection: Upgrade\r\nX-Bad Name: 1", false)]
    [InlineData("Connection: Upgrade\r\nNoColon", false)]
    [InlineData("Connection: Upgrade\r\nX-Latin: caf\u00e9", false)]
    [InlineData("Connection: Upgrade\r\nContent-Length: 5", false)]
    [InlineData("Connection: Upgrade\r\nContent-Length: 0", true)]
    [InlineData("Connection: Upgrade\r\nTransfer-Encoding: chunked", false)]
    public void Only_a_well_formed_bodiless_upgrade_is_taken(string connection, bool ours)
    {
        var text = $"GET /engine.io/?EIO=4 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n{connection}\r\n\r\n";
        Assert.Equal(ours ? RequestHead.Verdict.Ours : RequestHead.Verdict.NotOurs, Parse(text, out _));
    }

    [Theory]
    [InlineData("GET /engine.io/%2e%2e/x HTTP/1.1")]
    [InlineData("GET /engine.io//x HTTP/1.1")]
    [InlineData("GET /other/ HTTP/1.1")]
    [InlineData("GET /engine.io/ HTTP/1.0")]
    [InlineData("GET /engine.io/#frag HTTP/1.1")]
    [InlineData("POST /engine.io/ HTTP/1.1")]
    public void A_request_line_it_does_not_serve_goes_to_Kestrel(string line)
    {
        Assert.Equal(RequestHead.Verdict.NotOurs, Parse(line + "\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", out _));
    }

    [Fact]
    public void A_head_cut_anywhere_asks_for_more()
    {
        var text = Upgrade.Replace("KEY", "dGhlIHNhbXBsZSBub25jZQ==", StringComparison.Ordinal);
        for (var cut = 1; cut < text.Length - 1; cut += 7)
        {
            Assert.Equal(RequestHead.Verdict.NeedMore, Parse(text[..cut], out _));
        }
    }
}
