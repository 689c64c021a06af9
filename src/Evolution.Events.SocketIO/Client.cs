using System.Text.Json.Nodes;
using Evolution.Events.EngineIO;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO;

/// <summary>
/// One Engine.IO connection seen from Socket.IO: decodes its packets (binary ones reassembled),
/// routes them to its sockets by namespace, and closes it on bad input or when no namespace is
/// joined within the connect timeout.
/// </summary>
internal sealed class Client : IEngineSocketListener
{
    private readonly SocketIOServer _server;
    private readonly NamespaceSockets _sockets = new();
    // namespaces whose CONNECT is still in its middlewares: only while one is (an idle connection holds no set)
    private HashSet<string>? _connecting;
    private Timer? _connectTimer;
    private BinaryReconstructor? _reconstructor;
    private int _attachmentsToSkip;

    // null for the default parser: its form is the one packets are encoded in, and attachments are reassembled here
    private readonly ISocketIOParser? _parser;

    public Client(SocketIOServer server, EngineSocket connection)
    {
        _server = server;
        Connection = connection;
        _parser = server.Options.Parser is DefaultSocketIOParser ? null : server.Options.Parser;
        if (server.Options.ConnectTimeout > 0)
        {
            _connectTimer = new Timer(static s => ((Client)s!).OnConnectTimeout(), this, server.Options.ConnectTimeout, Timeout.Infinite);
        }

        server.AddPending(this);
    }

    public EngineSocket Connection { get; }

    /// <summary>This client's place in the server's list of connections that have joined no namespace yet.</summary>
    internal LinkedListNode<Client>? PendingNode { get; set; }

    public bool IsOpen => Connection.ReadyState == EngineReadyState.Open;

    /// <summary>
    /// A Socket.IO 2.x client (Engine.IO 3, Socket.IO protocol 4): joined to the main namespace without a CONNECT,
    /// namespaces with a query string (<c>/admin?token=…</c>, the query being the auth), CONNECT answered without a
    /// payload, a refusal's CONNECT_ERROR carrying the error's data or message alone; as socket.io 4 does for them.
    /// </summary>
    public bool IsProtocol4 => Connection.ProtocolVersion == 3;

    /// <summary>socket.io 4 joins an Engine.IO 3 client to "/" at once: a Socket.IO 2.x client sends no CONNECT for it.</summary>
    public void OnOpen(EngineSocket socket)
    {
        if (IsProtocol4)
        {
            Connect(SocketPacket.MainNamespace, []);
        }
    }

    public bool Write(EncodedPacket packet, bool isVolatile = false)
    {
        if (_parser is not null)
        {
            packet = _parser.Encode(packet);
        }

        if (isVolatile ? !Connection.SendVolatile(packet.Text) : !Connection.Send(packet.Text))
        {
            return false;
        }

        if (packet.HasAttachments)
        {
            foreach (var attachment in packet.Attachments)
            {
                if (!Connection.Send(attachment))
                {
                    return false;
                }
            }
        }

        return true;
    }

    public void Close() => Connection.Close();

    public void CloseForError(string reason)
    {
        _server.LogProtocolError(Connection.Id, EngineIO.LogText.Bound(reason));
        Connection.Abort(EngineCloseReason.ParseError, reason);
    }

    public void OnMessage(EngineSocket socket, string text)
    {
        if (_parser is not null)
        {
            DispatchDecoded(_parser.TryDecode(text, _server.Options.PacketLimits, out var decoded, out var failure), decoded, failure);
            return;
        }

        if (_reconstructor is not null || _attachmentsToSkip > 0)
        {
            CloseForError("got a text packet while waiting for binary attachments");
            return;
        }

        if (!SocketPacketDecoder.TryDecode(text, _server.Options.PacketLimits, out var packet, out var error))
        {
            CloseForError(error!);
            return;
        }

        if (packet!.Attachments > 0)
        {
            if (!HasJoined(packet.Namespace))
            {
                // a packet for a namespace this client has not joined closes the connection, as in socket.io,
                // before any attachment is read: a connection that has joined nothing cannot pin any
                CloseNotJoined(packet);
                return;
            }

            _reconstructor = new BinaryReconstructor(packet, _server.Options.MaxAttachmentBytes);
            return;
        }

        Dispatch(packet);
    }

    public void OnBinary(EngineSocket socket, byte[] data)
    {
        if (_parser is not null)
        {
            DispatchDecoded(_parser.TryDecode(data, _server.Options.PacketLimits, out var decoded, out var failure), decoded, failure);
            return;
        }

        if (_attachmentsToSkip > 0)
        {
            _attachmentsToSkip--;
            return;
        }

        if (_reconstructor is null)
        {
            CloseForError("got binary data outside a binary packet");
            return;
        }

        if (_reconstructor.TryAdd(data, out var packet, out var error))
        {
            _reconstructor = null;
            Dispatch(packet!);
        }
        else if (error is not null)
        {
            CloseForError(error);
        }
    }

    public void OnClose(EngineSocket socket, EngineCloseReason reason, string? description)
    {
        Interlocked.Exchange(ref _connectTimer, null)?.Dispose();
        _reconstructor = null;
        _server.RemovePending(this);
        Socket[] sockets;
        lock (_sockets)
        {
            sockets = _sockets.ToArray();
        }

        var why = DisconnectReason.From(reason);
        foreach (var s in sockets)
        {
            s.OnClose(why);
        }
    }

    internal void Add(Socket socket)
    {
        lock (_sockets)
        {
            _sockets.Set(socket);
            DoneConnecting(socket.Namespace.Name);
        }

        Interlocked.Exchange(ref _connectTimer, null)?.Dispose();
        _server.RemovePending(this);
    }

    /// <summary>Closes a connection that has joined no namespace, to make room for a newer one.</summary>
    internal void EvictPending()
    {
        _server.LogPendingEvicted(Connection.Id);
        Connection.Close();
    }

    private bool HasJoined(string nsp)
    {
        lock (_sockets)
        {
            return _sockets.Contains(nsp);
        }
    }

    internal void Remove(Socket socket)
    {
        lock (_sockets)
        {
            _sockets.Remove(socket);
        }
    }

    private void DispatchDecoded(bool ok, SocketPacket? packet, string? error)
    {
        if (!ok || packet is null)
        {
            CloseForError(error ?? "invalid packet");
            return;
        }

        Dispatch(packet);
    }

    private void Dispatch(SocketPacket packet)
    {
        if (IsProtocol4 && packet.Namespace.IndexOf('?') is var query and >= 0)
        {
            // socket.io 4's _parseNamespace for protocol 3: the namespace is the path, its query the auth
            var auth = new JsonObject();
            foreach (var (key, value) in Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(packet.Namespace[query..]))
            {
                auth[key] = value.ToString();
            }

            packet = packet with { Namespace = packet.Namespace[..query], Data = packet.Type == SocketPacketType.Connect ? auth : packet.Data };
        }

        if (packet.Type == SocketPacketType.Connect)
        {
            Connect(packet.Namespace, packet.Data as JsonObject ?? []);
            return;
        }

        Socket? socket;
        lock (_sockets)
        {
            _sockets.TryGet(packet.Namespace, out socket);
        }

        if (socket is null)
        {
            CloseNotJoined(packet);
            return;
        }

        socket.OnPacket(packet);
    }

    /// <summary>
    /// socket.io's client.ts answers a packet other than CONNECT for a namespace the connection has not joined by
    /// closing the whole connection ("invalid state"); so does this server, instead of guessing what was meant.
    /// </summary>
    private void CloseNotJoined(SocketPacket packet)
    {
        _server.LogProtocolError(Connection.Id, $"{packet.Type} packet for namespace '{EngineIO.LogText.Bound(packet.Namespace)}', not joined");
        Connection.Close();
    }

    private void Connect(string name, JsonObject auth)
    {
        bool joined;
        lock (_sockets)
        {
            joined = _sockets.Contains(name);
            if (joined || !(_connecting ??= new(StringComparer.Ordinal)).Add(name))
            {
                // a second CONNECT while the first one's middlewares run is dropped: the first one answers
                if (!joined)
                {
                    return;
                }
            }
        }

        if (joined)
        {
            // a CONNECT for a namespace already joined is an invalid state in socket.io too: it closes the connection
            _server.LogProtocolError(Connection.Id, $"CONNECT for namespace '{EngineIO.LogText.Bound(name)}', already joined");
            Connection.Close();
            return;
        }

        var nsp = _server.ResolveNamespace(name);
        if (nsp is null)
        {
            lock (_sockets)
            {
                DoneConnecting(name);
            }

            _server.OnRefused(name, "Invalid namespace", Connection.Request.RemoteAddress?.ToString());
            Write(SocketPacketEncoder.ConnectError(name, "Invalid namespace"));
            return;
        }

        // the request that carried this CONNECT (read now: it is only known during the listener call)
        var connectRequest = Connection.CurrentRequest ?? Connection.Request;
        _ = ConnectAsync(nsp, name, auth, connectRequest);
    }

    private async Task ConnectAsync(Namespace nsp, string name, JsonObject auth, EngineRequest connectRequest)
    {
        try
        {
            await nsp.AddAsync(this, auth, connectRequest);
        }
        catch (Exception ex)
        {
            _server.LogHandlerFailure(ex, "connect", Connection.Id);
        }
        finally
        {
            lock (_sockets)
            {
                DoneConnecting(name);
            }
        }
    }

    /// <summary>Under the lock of <c>_sockets</c>: the set goes once it is empty.</summary>
    private void DoneConnecting(string name)
    {
        if (_connecting is { } connecting && connecting.Remove(name) && connecting.Count == 0)
        {
            _connecting = null;
        }
    }

    private void OnConnectTimeout()
    {
        lock (_sockets)
        {
            if (_sockets.Count > 0)
            {
                return;
            }
        }

        _server.LogConnectTimeout(Connection.Id);
        Connection.Close();
    }
}
