namespace Evolution.Events.SocketIO.Protocol;

/// <summary>
/// An argument that is already JSON (UTF-8): written into the packet as it is, never re-serialized.
/// Use it to emit a payload serialized once for many packets.
/// </summary>
public readonly struct RawJson
{
    /// <summary>Wraps UTF-8 JSON text (one JSON value), not copied; it is validated when written into a packet.</summary>
    public RawJson(ReadOnlyMemory<byte> utf8) => Utf8 = utf8;

    /// <summary>The UTF-8 JSON text.</summary>
    public ReadOnlyMemory<byte> Utf8 { get; }

    /// <summary>Wraps a JSON string (encoded to UTF-8 once).</summary>
    public static RawJson FromString(string json) => new(System.Text.Encoding.UTF8.GetBytes(json));

    /// <summary>The JSON text.</summary>
    public override string ToString() => System.Text.Encoding.UTF8.GetString(Utf8.Span);
}
