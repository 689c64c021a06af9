using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Evolution.Events.SocketIO;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Evolution.Events.BrowserTests;

/// <summary>
/// Connection state recovery in Chromium: a page with the stock socket.io client the gateway serves, connected
/// to <c>/{instance}</c> over websocket through a TCP proxy in the test process. The test cuts every connection
/// through the proxy (Chromium's WebSocket closes at once) and refuses new ones while numbered events are
/// ingested, then accepts again: the client reconnects by itself, recovers, and has every number once, in order.
/// </summary>
[Collection(ChromiumCollection.Name)]
public sealed class RecoveryPageTests(ChromiumFixture chromium, ITestOutputHelper output)
{
    [Fact]
    public async Task ThePageRecoversEveryEventIngestedDuringACut()
    {
        await using var gateway = await GatewayHost.StartAsync();
        var token = await gateway.CreateInstanceAsync("shop");
        var io = gateway.App.Services.GetRequiredService<SocketIOServer>();
        await using var proxy = TcpCutProxy.Start(gateway.BaseUri.Port);
        var console = new List<string>();
        var pageErrors = new List<string>();
        var page = await chromium.NewPageAsync(console);
        page.PageError += (_, error) => pageErrors.Add(error);
        try
        {
            // a page of the gateway's origin (any page would do) loads the bundle the gateway serves
            await page.GotoAsync(new Uri(gateway.BaseUri, "/socket.io.min.js").ToString());
            await page.AddScriptTagAsync(new() { Url = "/socket.io.min.js" });
            await page.EvaluateAsync(
                """
                ([url, token]) => {
                  window.seen = [];
                  window.connects = [];
                  const socket = io(url, { transports: ['websocket'], auth: { token },
                    reconnectionDelay: 200, reconnectionDelayMax: 500, randomizationFactor: 0 });
                  window.socket = socket;
                  socket.on('connect', () => window.connects.push({ id: socket.id, recovered: socket.recovered }));
                  socket.on('messages.upsert', (e) => window.seen.push(e.data.seq));
                }
                """,
                new[] { $"http://127.0.0.1:{proxy.Port}/shop", token });
            await page.WaitForFunctionAsync("() => window.connects.length === 1");
            Assert.Equal("websocket", await page.EvaluateAsync<string>("window.socket.io.engine.transport.name"));
            var firstId = await page.EvaluateAsync<string>("window.socket.id");

            const int before = 5, during = 20, after = 5;
            for (var i = 1; i <= before; i++)
                await Ingest(gateway, i);
            await page.WaitForFunctionAsync($"() => window.seen.length === {before}");

            var sessions = io.Recovery.Sessions;
            proxy.Cut();
            await page.WaitForFunctionAsync("() => !window.socket.connected");
            for (var i = before + 1; i <= before + during; i++)
                await Ingest(gateway, i);
            // the server noticed the cut and keeps the session (condition, bounded)
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (io.Recovery.Sessions <= sessions)
            {
                Assert.True(DateTime.UtcNow < deadline, "the server did not notice the cut");
                await Task.Delay(20);
            }
            Assert.Equal(before, await page.EvaluateAsync<int>("window.seen.length")); // nothing arrived while cut
            // and the page tried to reconnect and was refused (the drop is real, not a paused socket)
            while (proxy.Refused == 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "the page did not try to reconnect");
                await Task.Delay(20);
            }
            proxy.Heal();

            await page.WaitForFunctionAsync("() => window.connects.length === 2", null, new() { Timeout = 30_000 });
            var again = await page.EvaluateAsync<JsonElement>("window.connects[1]");
            Assert.True(again.GetProperty("recovered").GetBoolean(), again.ToString());
            Assert.Equal(firstId, again.GetProperty("id").GetString());
            for (var i = before + during + 1; i <= before + during + after; i++)
                await Ingest(gateway, i);
            const int total = before + during + after;
            await page.WaitForFunctionAsync($"() => window.seen.length >= {total}", null, new() { Timeout = 30_000 });
            var seen = await page.EvaluateAsync<int[]>("window.seen");
            Assert.Equal(Enumerable.Range(1, total), seen); // no gap, no duplicate, in order
            Assert.Equal(1, io.Recovery.Recovered);
            Assert.Empty(pageErrors);
            ChromiumFixture.AssertNoPageErrors(console);
        }
        finally
        {
            foreach (var line in console)
                output.WriteLine(line);
            await chromium.ClosePageAsync(page, output);
        }
    }

    private static Task Ingest(GatewayHost gateway, int seq) =>
        gateway.IngestAsync("messages.upsert", "shop", new JsonObject { ["seq"] = seq });

    /// <summary>
    /// A loopback TCP proxy to the gateway. <see cref="Cut"/> destroys every open connection and closes each new
    /// one at once until <see cref="Heal"/>: a real network drop for the browser's WebSocket.
    /// </summary>
    private sealed class TcpCutProxy : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly int _target;
        private readonly CancellationTokenSource _stop = new();
        private readonly Lock _gate = new();
        private readonly List<TcpClient> _live = [];
        private readonly Task _accepting;
        private bool _cut;
        private int _refused;

        private TcpCutProxy(int target)
        {
            _target = target;
            _listener.Start();
            _accepting = AcceptLoopAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public int Refused => Volatile.Read(ref _refused);

        public static TcpCutProxy Start(int target) => new(target);

        public void Cut()
        {
            lock (_gate)
            {
                _cut = true;
                foreach (var c in _live)
                    Abort(c);
                _live.Clear();
            }
        }

        public void Heal()
        {
            lock (_gate)
                _cut = false;
        }

        private static void Abort(TcpClient c)
        {
            try
            {
                c.Client.LingerState = new LingerOption(true, 0); // RST: the peer sees the drop at once
                c.Close();
            }
            catch (ObjectDisposedException)
            {
            }
            catch (SocketException)
            {
            }
        }

        private async Task AcceptLoopAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient down;
                try
                {
                    down = await _listener.AcceptTcpClientAsync(_stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }
                _ = PipeAsync(down);
            }
        }

        private async Task PipeAsync(TcpClient down)
        {
            var up = new TcpClient();
            lock (_gate)
            {
                if (_cut)
                {
                    Interlocked.Increment(ref _refused);
                    Abort(down);
                    up.Dispose();
                    return;
                }
                _live.Add(down);
                _live.Add(up);
            }
            try
            {
                await up.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
                var a = down.GetStream();
                var b = up.GetStream();
                await Task.WhenAny(a.CopyToAsync(b, _stop.Token), b.CopyToAsync(a, _stop.Token));
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException
                or InvalidOperationException)
            {
            }
            finally
            {
                lock (_gate)
                {
                    _live.Remove(down);
                    _live.Remove(up);
                }
                Abort(down);
                Abort(up);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _accepting;
            Cut();
            _stop.Dispose();
        }
    }
}
