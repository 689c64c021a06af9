using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Evolution.Events.BrowserTests;

/// <summary>
/// The polling transport as real browser clients use it: the stock socket.io-client 4 on polling only, whose large poll
/// responses come gzip-compressed (<c>WEBSOCKET_HTTP_COMPRESSION</c>); and socket.io-client 2.x with
/// <c>forceJSONP</c> (Engine.IO 3 JSONP polling: script tags and form posts) against <c>WEBSOCKET_ALLOW_EIO3=true</c>.
/// </summary>
[Collection(ChromiumCollection.Name)]
public sealed class PollingTests(ChromiumFixture chromium, ITestOutputHelper output)
{
    [Theory]
    [InlineData("true", "gzip")]
    [InlineData("false", null)]
    public async Task A_large_event_reaches_a_polling_page_intact_its_poll_response_compressed_as_configured(string compression, string? expected)
    {
        await using var site = await PageServer.StartAsync();
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["CORS_ORIGIN"] = site.Origin,
            ["WEBSOCKET_HTTP_COMPRESSION"] = compression,
        });
        var token = await gateway.CreateInstanceAsync("shop");
        site.Html = $$"""
            <!DOCTYPE html>
            <html lang="en">
              <head><meta charset="UTF-8" /><title>polling</title><script src="{{gateway.BaseUri}}socket.io/socket.io.js"></script></head>
              <body>
                <script>
                  window.received = [];
                  const socket = io('{{gateway.BaseUri}}shop', { auth: { apikey: '{{token}}' }, reconnection: false, transports: ['polling'] });
                  socket.on('connect', () => { window.connectedOver = socket.io.engine.transport.name; });
                  socket.on('connection.update', (d) => window.received.push(d.data));
                </script>
              </body>
            </html>
            """;
        var responses = new ConcurrentQueue<IResponse>();
        await WithPageAsync(site, page => page.Response += (_, response) => responses.Enqueue(response), async page =>
        {
            await page.WaitForFunctionAsync("() => window.connectedOver !== undefined");
            Assert.Equal("polling", await page.EvaluateAsync<string>("window.connectedOver"));
            var large = string.Concat(Enumerable.Range(0, 400).Select(i => $"line {i} of a large event; "));
            await gateway.IngestAsync("connection.update", "shop", new JsonObject { ["instance"] = "shop", ["state"] = "open", ["note"] = large });
            await page.WaitForFunctionAsync("() => window.received.length > 0");
            Assert.Equal(large, await page.EvaluateAsync<string>("window.received[0].note"));

            // the poll response that carried it: a GET of the polling transport, larger than the 1024-byte threshold
            var encodings = new List<string?>();
            foreach (var response in responses)
            {
                if (response.Request.Method != "GET" || !response.Url.Contains("transport=polling", StringComparison.Ordinal))
                    continue;
                var body = await response.BodyAsync(); // decoded by the browser
                if (body.Length < large.Length)
                    continue;
                var headers = await response.AllHeadersAsync();
                encodings.Add(headers.GetValueOrDefault("content-encoding"));
                if (expected is not null)
                    Assert.Contains("Accept-Encoding", headers.GetValueOrDefault("vary") ?? "", StringComparison.OrdinalIgnoreCase);
            }

            Assert.Equal([expected], encodings);
        });
    }

    [Fact]
    public async Task A_socket_io_2_client_with_forceJSONP_connects_emits_with_ack_and_receives_events()
    {
        var bundle = await File.ReadAllTextAsync(SeedPages.NodeModule("socket.io-client-v2/dist/socket.io.js"));
        await using var site = await PageServer.StartAsync(files: new Dictionary<string, string> { ["/sio2.js"] = bundle });
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["CORS_ORIGIN"] = site.Origin,
            ["WEBSOCKET_ALLOW_EIO3"] = "true",
        });
        await gateway.CreateInstanceAsync("shop");
        // the global key: a 2.x client is joined to "/" too, which an instance token may not open (its refusal would
        // reach every socket of the client as an "error", as socket.io-client 2.x spreads root namespace errors)
        var token = GatewayHost.Key;
        site.Html = $$"""
            <!DOCTYPE html>
            <html lang="en">
              <head><meta charset="UTF-8" /><title>jsonp</title><script src="/sio2.js"></script></head>
              <body>
                <script>
                  window.received = []; window.errors = [];
                  const socket = io('{{gateway.BaseUri}}shop?apikey={{token}}', { forceJSONP: true, transports: ['polling'], reconnection: false });
                  window.socket = socket;
                  socket.on('connect', () => { window.connectedOver = socket.io.engine.transport.name; window.jsonp = !!window.___eio; });
                  socket.on('error', (e) => window.errors.push(String(e)));
                  socket.on('connect_error', (e) => window.errors.push(String(e)));
                  socket.on('connection.update', (d) => window.received.push(d.data));
                </script>
              </body>
            </html>
            """;
        var requests = new ConcurrentQueue<(string Method, string Url, string? ContentType)>();
        await WithPageAsync(site, page => page.Request += (_, request) =>
                requests.Enqueue((request.Method, request.Url, request.Headers.GetValueOrDefault("content-type"))),
            async page =>
            {
                await page.WaitForFunctionAsync("() => window.connectedOver !== undefined || window.errors.length > 0");
                Assert.Empty(await page.EvaluateAsync<string[]>("window.errors"));
                Assert.Equal("polling", await page.EvaluateAsync<string>("window.connectedOver"));
                Assert.True(await page.EvaluateAsync<bool>("window.jsonp"));

                // client to server with an ack: the gateway answers (no INBOUND_WEBHOOK_URL here: its error), over a form POST;
                // a newline and an escaped newline cross the form's escaping intact (the gateway echoes nothing, so the ack proves receipt)
                var ack = await page.EvaluateAsync<string>(
                    "() => new Promise((resolve) => window.socket.emit('note', 'a\\nb\\\\nc \u2028 ' + 'x'.repeat(2000), (r) => resolve(JSON.stringify(r))))");
                Assert.Contains("INBOUND_WEBHOOK_URL", ack, StringComparison.Ordinal);

                // server to client: an event, with a newline, a quote and U+2028 in it, in a JSONP poll response
                var text = "line\nbreak \"quoted\" \u2028 separator \\n not a newline";
                await gateway.IngestAsync("connection.update", "shop", new JsonObject { ["instance"] = "shop", ["state"] = "open", ["note"] = text });
                await page.WaitForFunctionAsync("() => window.received.length > 0");
                Assert.Equal(text, await page.EvaluateAsync<string>("window.received[0].note"));
                Assert.True(await page.EvaluateAsync<bool>("window.socket.connected"));
            });

        var engine = requests.Where(r => r.Url.StartsWith(gateway.BaseUri + "socket.io/", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(engine);
        Assert.All(engine, r => Assert.Contains("EIO=3", r.Url, StringComparison.Ordinal));
        Assert.All(engine.Where(r => r.Method == "GET"), r => Assert.Matches("[?&]j=[0-9]+", r.Url));
        Assert.Contains(engine, r => r.Method == "POST" && r.ContentType == "application/x-www-form-urlencoded");
    }

    private async Task WithPageAsync(PageServer site, Action<IPage> before, Func<IPage, Task> body)
    {
        var console = new List<string>();
        var page = await chromium.NewPageAsync(console);
        try
        {
            before(page);
            // not "load": a JSONP long poll is a script element that stays pending, and it holds the load event back
            await page.GotoAsync(site.Url.ToString(), new PageGotoOptions { WaitUntil = WaitUntilState.DOMContentLoaded });
            await body(page);
            ChromiumFixture.AssertNoPageErrors(console);
        }
        finally
        {
            foreach (var line in console)
                output.WriteLine(line);
            await chromium.ClosePageAsync(page, output);
        }
    }
}
