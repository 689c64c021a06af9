using System.Text.Json;
using System.Text.Json.Nodes;

namespace Evolution.Events.SocketIO.Protocol;

/// <summary>
/// Collects the binary attachments that follow a BINARY_EVENT/BINARY_ACK packet and puts each one
/// where its placeholder stands.
/// </summary>
internal sealed class BinaryReconstructor
{
    private readonly SocketPacket _packet;
    private readonly List<byte[]> _buffers;
    private readonly long _maxBytes;
    private long _bytes;

    public BinaryReconstructor(SocketPacket packet)
        : this(packet, long.MaxValue)
    {
    }

    /// <param name="packet">The decoded packet whose attachments follow.</param>
    /// <param name="maxBytes">Most bytes all the packet's attachments may total; past it <see cref="TryAdd"/> fails.</param>
    public BinaryReconstructor(SocketPacket packet, long maxBytes)
    {
        _packet = packet;
        _maxBytes = maxBytes;
        _buffers = new List<byte[]>(Math.Min(packet.Attachments, 16));
    }

    /// <summary>
    /// Adds one attachment; returns the finished packet once all have arrived. Fails (with
    /// <paramref name="error"/> set) when the attachments total more than the byte bound or a
    /// placeholder has no attachment.
    /// </summary>
    public bool TryAdd(byte[] attachment, out SocketPacket? packet, out string? error)
    {
        packet = null;
        _bytes += attachment.Length;
        if (_bytes > _maxBytes)
        {
            error = $"binary attachments too large (over {_maxBytes} bytes)";
            return false;
        }

        _buffers.Add(attachment);
        error = null;
        if (_buffers.Count < _packet.Attachments)
        {
            return false;
        }

        var data = _packet.Data;
        if (!TryReplace(ref data, out error))
        {
            return false;
        }

        packet = _packet with { Data = data };
        return true;
    }

    private bool TryReplace(ref JsonNode? node, out string? error)
    {
        error = null;
        switch (node)
        {
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    var child = array[i];
                    if (!TryReplace(ref child, out error))
                    {
                        return false;
                    }

                    if (!ReferenceEquals(child, array[i]))
                    {
                        array[i] = child;
                    }
                }

                return true;
            case JsonObject obj when IsPlaceholder(obj, out var num):
                if (num < 0 || num >= _buffers.Count)
                {
                    error = $"placeholder {num} has no attachment";
                    return false;
                }

                node = JsonValue.Create(_buffers[num]);
                return true;
            case JsonObject obj:
                foreach (var name in obj.Select(p => p.Key).ToList())
                {
                    var child = obj[name];
                    if (!TryReplace(ref child, out error))
                    {
                        return false;
                    }

                    if (!ReferenceEquals(child, obj[name]))
                    {
                        obj[name] = child;
                    }
                }

                return true;
            default:
                return true;
        }
    }

    private static bool IsPlaceholder(JsonObject obj, out int num)
    {
        num = -1;
        if (obj.Count != 2 || obj["_placeholder"] is not JsonValue flag || flag.GetValueKind() != JsonValueKind.True)
        {
            return false;
        }

        return obj["num"] is JsonValue n && n.TryGetValue(out num);
    }
}
