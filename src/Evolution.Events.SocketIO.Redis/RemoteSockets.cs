using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Evolution.Events.EngineIO;
using Evolution.Events.SocketIO.Adapters;
using Microsoft.AspNetCore.Http;

namespace Evolution.Events.SocketIO.Redis;

/// <summary>
/// The sockets of a <c>FETCH_SOCKETS_RESPONSE</c> as socket.io-adapter writes them: <c>{id, handshake, rooms, data}</c>,
/// the handshake as socket.io's (<c>headers, time, address, xdomain, secure, issued, url, query, auth</c>).
/// </summary>
internal static class RemoteSockets
{
    /// <summary>One of this node's sockets, described for another node.</summary>
    public static JsonObject Describe(Socket socket)
    {
        var h = socket.Handshake;
        var data = new JsonObject();
        foreach (var (key, value) in socket.Data)
        {
            data[key] = value is JsonNode node ? node.DeepClone() : JsonSerializer.SerializeToNode(value);
        }

        return new JsonObject
        {
            ["id"] = socket.Id,
            ["handshake"] = new JsonObject
            {
                ["headers"] = Map(h.Headers),
                ["time"] = h.Time.ToString("R", CultureInfo.InvariantCulture),
                ["address"] = h.Address,
                ["xdomain"] = h.Headers.ContainsKey("origin"),
                ["secure"] = h.Secure,
                ["issued"] = h.Time.ToUnixTimeMilliseconds(),
                ["url"] = h.Url,
                ["query"] = Map(h.Query),
                ["auth"] = h.CopyAuth(),
            },
            ["rooms"] = new JsonArray([.. socket.Rooms.Select(r => (JsonNode?)r)]),
            ["data"] = data,
        };
    }

    /// <summary>Another node's socket (ours or Node's), or null when the description is not usable.</summary>
    public static RemoteSocket? From(Namespace nsp, JsonNode? node)
    {
        if (node is not JsonObject socket || StreamsWireCodec.Text(socket["id"]) is not { } id)
        {
            return null;
        }

        var handshake = socket["handshake"] as JsonObject ?? [];
        var context = new DefaultHttpContext();
        var url = StreamsWireCodec.Text(handshake["url"]) ?? "/";
        var question = url.IndexOf('?');
        context.Request.Path = new PathString(question < 0 ? url : url[..question]);
        if (question >= 0)
        {
            context.Request.QueryString = new QueryString(url[question..]);
        }
        else if (handshake["query"] is JsonObject query)
        {
            context.Request.QueryString = QueryString.Create(query.Select(p => new KeyValuePair<string, string?>(p.Key, StreamsWireCodec.Text(p.Value) ?? p.Value?.ToJsonString())));
        }

        if (handshake["headers"] is JsonObject headers)
        {
            foreach (var (name, value) in headers)
            {
                context.Request.Headers[name] = StreamsWireCodec.Text(value) ?? value?.ToJsonString();
            }
        }

        if (IPAddress.TryParse(StreamsWireCodec.Text(handshake["address"]), out var address))
        {
            context.Connection.RemoteIpAddress = address;
        }

        context.Request.Scheme = handshake["secure"] is JsonValue secure && secure.GetValueKind() == JsonValueKind.True ? "https" : "http";
        var request = EngineRequest.From(context);
        var auth = handshake["auth"] as JsonObject ?? [];
        var data = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (socket["data"] is JsonObject values)
        {
            foreach (var (key, value) in values)
            {
                data[key] = StreamsWireCodec.ToClr(value);
            }
        }

        var rooms = StreamsWireCodec.Strings(socket["rooms"]);
        return new RemoteSocket(nsp, id, new Handshake(request, request, auth), rooms, data);
    }

    private static JsonObject Map(IReadOnlyDictionary<string, string> values)
    {
        var obj = new JsonObject();
        foreach (var (key, value) in values)
        {
            obj[key] = value;
        }

        return obj;
    }
}
