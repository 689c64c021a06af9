namespace Evolution.Events.SocketIO.Protocol;

/// <summary>
/// An argument that is already JSON (UTF-8): written into the packet as it is, never re-serialized.
/// Use it to emit a payload serialized once for many packets.
/// </summary>
public readonly struct RawJson
{
    public RawJson(ReadOnlyMemory<byte> utf8) => Utf8 = utf8;

    public ReadOnlyMemory<byte> Utf8 { get; }

    public static RawJson FromString(string json) => new(System.Text.Encoding.UTF8.GetBytes(json));

    public override string ToString() => System.Text.Encoding.UTF8.GetString(Utf8.Span);
}
