using System.Text.Json;
using Evolution.Events.SocketIO.Adapters;

namespace Evolution.Events.SocketIO.AdminUI.Tests;

/// <summary>The Admin UI protocol (@socket.io/admin-ui 0.5) with real .NET Socket.IO clients on loopback.</summary>
public class AdminUITests
{
    private static string[] Strings(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetString()!)];

    [Fact]
    public async Task A_wrong_password_is_refused_with_invalid_credentials()
    {
        await using var server = await AdminServer.StartAsync();
        using var admin = new AdminClient(server, new { username = "x", password = "wrong" });
        var error = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        admin.Socket.OnError += (_, message) => error.TrySetResult(message);
        _ = admin.Socket.ConnectAsync();
        Assert.Contains("invalid credentials", await error.Task.WaitAsync(AdminServer.Wait));
        Assert.False(admin.Socket.Connected);
        Assert.Equal(0, server.Admin.Namespace.SocketCount);
    }

    [Fact]
    public void Instrument_requires_an_authentication_or_an_explicit_anonymous_access()
    {
        var io = new SocketIOServer(new SocketIOOptions());
        Assert.Throws<ArgumentException>(() => AdminUIInstrumentation.Instrument(io, new AdminUIOptions()));
        Assert.Throws<ArgumentException>(() => AdminUIInstrumentation.Instrument(io, new AdminUIOptions { AllowAnonymous = true, NamespaceName = "/" }));
        using var open = AdminUIInstrumentation.Instrument(io, new AdminUIOptions { AllowAnonymous = true });
        Assert.Contains("MDISCONNECT", open.SupportedFeatures);
    }

    [Fact]
    public async Task Login_gives_config_session_stats_and_every_socket()
    {
        await using var server = await AdminServer.StartAsync();
        using var chat1 = server.Client("/chat", new { room = "lobby" });
        using var chat2 = server.Client("/chat", new { }, SocketIOClient.Transport.TransportProtocol.Polling);
        await AdminServer.ConnectAsync(chat1);
        await AdminServer.ConnectAsync(chat2);

        using var admin = new AdminClient(server, new { username = "anyone", password = AdminServer.Password });
        await AdminServer.ConnectAsync(admin.Socket);

        var session = (await admin.WaitForAsync("session"))[0].GetString();
        Assert.Matches("^[0-9a-f]{32}$", session);
        var config = (await admin.WaitForAsync("config"))[0];
        Assert.Equal(["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"],
            Strings(config.GetProperty("supportedFeatures")));

        var all = (await admin.WaitForAsync("all_sockets"))[0].EnumerateArray().ToArray();
        var chat = all.Where(s => s.GetProperty("nsp").GetString() == "/chat").ToArray();
        Assert.Equal(new[] { chat1.Id, chat2.Id }.Order(), chat.Select(s => s.GetProperty("id").GetString()).Order());
        var first = chat.Single(s => s.GetProperty("id").GetString() == chat1.Id);
        Assert.Equal("websocket", first.GetProperty("transport").GetString());
        Assert.Equal(12, first.GetProperty("clientId").GetString()!.Length);
        Assert.Contains("lobby", Strings(first.GetProperty("rooms")));
        Assert.Contains(chat1.Id, Strings(first.GetProperty("rooms")));
        Assert.Equal("127.0.0.1", first.GetProperty("handshake").GetProperty("address").GetString());
        Assert.Equal("4", first.GetProperty("handshake").GetProperty("query").GetProperty("EIO").GetString());
        Assert.False(first.GetProperty("data").TryGetProperty("_admin", out _));
        Assert.Equal("polling", chat.Single(s => s.GetProperty("id").GetString() == chat2.Id).GetProperty("transport").GetString());
        Assert.Contains(all, s => s.GetProperty("nsp").GetString() == "/admin" && s.GetProperty("id").GetString() == admin.Socket.Id);

        var stats = (await admin.WaitForAsync("server_stats", a => a[0].GetProperty("clientsCount").GetInt32() == 3))[0];
        Assert.Equal("node-a", stats.GetProperty("serverId").GetString());
        Assert.Equal(Environment.ProcessId, stats.GetProperty("pid").GetInt32());
        Assert.Equal(1, stats.GetProperty("pollingClientsCount").GetInt32());
        Assert.True(stats.GetProperty("uptime").GetDouble() > 0);
        var namespaces = stats.GetProperty("namespaces").EnumerateArray().ToDictionary(n => n.GetProperty("name").GetString()!, n => n.GetProperty("socketsCount").GetInt32());
        Assert.Equal(2, namespaces["/chat"]);
        Assert.Equal(1, namespaces["/admin"]);
        Assert.Equal(0, namespaces["/"]);

        // connections are counted per second in the aggregated events
        await admin.WaitForAsync("server_stats", a => a[0].GetProperty("aggregatedEvents").EnumerateArray()
            .Any(e => e.GetProperty("type").GetString() == "rawConnection"));
    }

    [Fact]
    public async Task The_session_id_logs_in_again_without_the_password()
    {
        await using var server = await AdminServer.StartAsync();
        string sessionId;
        using (var admin = new AdminClient(server, new { username = "a", password = AdminServer.Password }))
        {
            await AdminServer.ConnectAsync(admin.Socket);
            sessionId = (await admin.WaitForAsync("session"))[0].GetString()!;
            await admin.Socket.DisconnectAsync();
        }

        using var again = new AdminClient(server, new { sessionId });
        await AdminServer.ConnectAsync(again.Socket);
        await again.WaitForAsync("config");
        Assert.DoesNotContain(again.Events, e => e.Name == "session");

        using var forged = new AdminClient(server, new { sessionId = "0123456789abcdef0123456789abcdef" });
        var error = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        forged.Socket.OnError += (_, message) => error.TrySetResult(message);
        _ = forged.Socket.ConnectAsync();
        Assert.Contains("invalid credentials", await error.Task.WaitAsync(AdminServer.Wait));
    }

    [Fact]
    public async Task Sockets_rooms_and_events_are_reported_as_they_happen()
    {
        await using var server = await AdminServer.StartAsync();
        using var admin = new AdminClient(server, new { username = "a", password = AdminServer.Password });
        await AdminServer.ConnectAsync(admin.Socket);
        await admin.WaitForAsync("all_sockets");

        using var chat = server.Client("/chat", new { room = "lobby" });
        var welcomed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        chat.On("welcome", _ => welcomed.TrySetResult());
        await AdminServer.ConnectAsync(chat);
        var connected = (await admin.WaitForAsync("socket_connected", a => a[0].GetProperty("id").GetString() == chat.Id))[0];
        Assert.Equal("/chat", connected.GetProperty("nsp").GetString());
        await admin.WaitForAsync("room_joined", a => a[0].GetString() == "/chat" && a[1].GetString() == "lobby" && a[2].GetString() == chat.Id);

        await chat.EmitAsync("hello", "world");
        await welcomed.Task.WaitAsync(AdminServer.Wait);
        var received = await admin.WaitForAsync("event_received", a => a[1].GetString() == chat.Id);
        Assert.Equal("/chat", received[0].GetString());
        Assert.Equal("[\"hello\",\"world\"]", received[2].GetRawText());
        var sent = await admin.WaitForAsync("event_sent", a => a[1].GetString() == chat.Id);
        Assert.Equal("[\"welcome\",\"world\"]", sent[2].GetRawText());

        await chat.DisconnectAsync();
        await admin.WaitForAsync("room_left", a => a[1].GetString() == "lobby" && a[2].GetString() == chat.Id);
        var gone = await admin.WaitForAsync("socket_disconnected", a => a[1].GetString() == chat.Id);
        Assert.Equal("/chat", gone[0].GetString());
        Assert.Equal(DisconnectReason.ClientNamespaceDisconnect, gone[2].GetString());
    }

    [Fact]
    public async Task Commands_disconnect_join_and_leave_the_filtered_sockets()
    {
        await using var server = await AdminServer.StartAsync();
        using var keep = server.Client("/chat", new { });
        using var drop = server.Client("/chat", new { });
        await AdminServer.ConnectAsync(keep);
        await AdminServer.ConnectAsync(drop);
        var dropped = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        drop.OnDisconnected += (_, reason) => dropped.TrySetResult(reason);

        using var admin = new AdminClient(server, new { username = "a", password = AdminServer.Password });
        await AdminServer.ConnectAsync(admin.Socket);
        await admin.WaitForAsync("config");
        var chat = server.Io.Of("/chat");

        await admin.Socket.EmitAsync("join", "/chat", "vip", keep.Id);
        await admin.WaitForAsync("room_joined", a => a[1].GetString() == "vip" && a[2].GetString() == keep.Id);
        Assert.Contains("vip", chat.SocketsById[keep.Id].Rooms);
        Assert.DoesNotContain("vip", chat.SocketsById[drop.Id].Rooms);

        await admin.Socket.EmitAsync("leave", "/chat", "vip", keep.Id);
        await admin.WaitForAsync("room_left", a => a[1].GetString() == "vip" && a[2].GetString() == keep.Id);

        await admin.Socket.EmitAsync("_disconnect", "/chat", false, drop.Id);
        Assert.Equal("io server disconnect", await dropped.Task.WaitAsync(AdminServer.Wait));
        await admin.WaitForAsync("socket_disconnected", a => a[1].GetString() == drop.Id);
        Assert.True(keep.Connected);
        Assert.Equal([keep.Id], chat.SocketsById.Keys.ToArray());

        // a namespace that does not exist is not made by a command
        var notices = new List<string>();
        var second = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        keep.On("notice", r =>
        {
            lock (notices)
            {
                notices.Add(r.GetValue<string>(0));
                if (notices.Count == 2)
                {
                    second.TrySetResult();
                }
            }
        });
        await admin.Socket.EmitAsync("_disconnect", "/nowhere", false, "");
        await admin.Socket.EmitAsync("emit", "/chat", "", "notice", "to all");
        await admin.Socket.EmitAsync("emit", "/chat", keep.Id, "notice", "to you");
        await second.Task.WaitAsync(AdminServer.Wait);
        Assert.Equal(["to all", "to you"], notices);
        Assert.False(server.Io.TryGetNamespace("/nowhere", out _));
    }

    [Fact]
    public async Task Readonly_announces_no_command_and_ignores_them()
    {
        await using var server = await AdminServer.StartAsync(o => o.ReadOnly = true);
        using var chat = server.Client("/chat", new { });
        await AdminServer.ConnectAsync(chat);
        using var admin = new AdminClient(server, new { username = "a", password = AdminServer.Password });
        await AdminServer.ConnectAsync(admin.Socket);
        var config = (await admin.WaitForAsync("config"))[0];
        Assert.Equal(["AGGREGATED_EVENTS", "ALL_EVENTS"], Strings(config.GetProperty("supportedFeatures")));

        await admin.Socket.EmitAsync("_disconnect", "/chat", false, chat.Id);
        // the admin's own events go by in order: once a later stats event arrives, the command was read and ignored
        var count = admin.Events.Count;
        await admin.WaitForAsync("server_stats", _ => admin.Events.Count > count + 1);
        Assert.True(chat.Connected);
        Assert.Equal(1, server.Io.Of("/chat").SocketCount);
    }

    [Fact]
    public async Task Production_mode_sends_statistics_only()
    {
        await using var server = await AdminServer.StartAsync(o => o.Mode = AdminUIMode.Production);
        using var admin = new AdminClient(server, new { username = "a", password = AdminServer.Password });
        await AdminServer.ConnectAsync(admin.Socket);
        var config = (await admin.WaitForAsync("config"))[0];
        Assert.DoesNotContain("ALL_EVENTS", Strings(config.GetProperty("supportedFeatures")));
        using var chat = server.Client("/chat", new { room = "r" });
        await AdminServer.ConnectAsync(chat);
        await admin.WaitForAsync("server_stats", a => a[0].GetProperty("namespaces").EnumerateArray()
            .Any(n => n.GetProperty("name").GetString() == "/chat" && n.GetProperty("socketsCount").GetInt32() == 1));
        Assert.DoesNotContain(admin.Events, e => e.Name is "all_sockets" or "socket_connected" or "room_joined");
    }

    [Fact]
    public async Task Dynamic_namespaces_made_later_are_reported_too()
    {
        await using var server = await AdminServer.StartAsync();
        var created = new List<string>();
        server.Io.NamespaceCreated += nsp => { lock (created) created.Add(nsp.Name); };
        server.Io.Of(name => name.StartsWith("/dyn-", StringComparison.Ordinal));
        using var admin = new AdminClient(server, new { username = "a", password = AdminServer.Password });
        await AdminServer.ConnectAsync(admin.Socket);
        await admin.WaitForAsync("config");

        using var dyn = server.Client("/dyn-1", new { });
        await AdminServer.ConnectAsync(dyn);
        await admin.WaitForAsync("socket_connected", a => a[0].GetProperty("nsp").GetString() == "/dyn-1" && a[0].GetProperty("id").GetString() == dyn.Id);
        lock (created)
        {
            Assert.Equal(["/dyn-1"], created);
        }
    }
}

/// <summary>The library hooks the instrumentation is built on.</summary>
public class LibraryHookTests
{
    [Fact]
    public async Task The_adapter_reports_joins_and_leaves_once_each_outside_its_lock()
    {
        await using var server = await AdminServer.StartAsync(o => o.Mode = AdminUIMode.Production);
        var adapter = (InMemoryAdapter)server.Io.Of("/chat").Adapter;
        var seen = new List<string>();
        adapter.RoomJoined += (room, id) => { lock (seen) seen.Add($"+{room}:{id}"); };
        adapter.RoomLeft += (room, id) =>
        {
            // outside the adapter's lock: reading the membership from a handler does not deadlock
            _ = adapter.Rooms;
            lock (seen) seen.Add($"-{room}:{id}");
        };

        using var client = server.Client("/chat", new { room = "a" });
        await AdminServer.ConnectAsync(client);
        var socket = server.Io.Of("/chat").SocketsById[client.Id];
        socket.Join(["a", "b", socket.Id]);
        socket.Leave("b");
        socket.Leave("b");
        await client.DisconnectAsync();
        var deadline = DateTime.UtcNow + AdminServer.Wait;
        while (!socket.Rooms.Count.Equals(0) || server.Io.Of("/chat").SocketCount > 0)
        {
            Assert.True(DateTime.UtcNow < deadline);
            await Task.Delay(20);
        }

        lock (seen)
        {
            Assert.Equal([$"+a:{client.Id}", $"+b:{client.Id}", $"-b:{client.Id}", $"-a:{client.Id}"], seen);
        }
    }

    [Fact]
    public async Task ConnectionOpened_is_raised_for_each_engine_connection()
    {
        await using var server = await AdminServer.StartAsync(o => o.Mode = AdminUIMode.Production);
        var opened = 0;
        server.Io.ConnectionOpened += _ => Interlocked.Increment(ref opened);
        using var a = server.Client("/chat", new { });
        using var b = server.Client("/", new { }, SocketIOClient.Transport.TransportProtocol.Polling);
        await AdminServer.ConnectAsync(a);
        await AdminServer.ConnectAsync(b);
        Assert.Equal(2, Volatile.Read(ref opened));
    }
}
