namespace Evolution.Events.EngineIO;

/// <summary>
/// A small lossy intern table for the strings every handshake repeats (header names, <c>Host</c>, <c>User-Agent</c>,
/// <c>EIO=4</c>, <c>transport=websocket</c>, the URL of a WebSocket handshake): each connection's
/// <see cref="EngineRequest"/> keeps one shared instance instead of its own copy. A slot holds the last string
/// that hashed to it, so unique values (a <c>Sec-WebSocket-Key</c>) only replace one another; strings are
/// immutable, so sharing them changes nothing a caller can see.
/// </summary>
internal static class SharedStrings
{
    private const int Slots = 256; // a power of two
    private const int MaxLength = 256;
    private static readonly string?[] Table = new string?[Slots];

    public static string Share(string value)
    {
        if (value.Length is 0 or > MaxLength)
        {
            return value.Length == 0 ? string.Empty : value;
        }

        var slot = (uint)value.GetHashCode() & (Slots - 1);
        var held = Volatile.Read(ref Table[slot]);
        if (held is not null && string.Equals(held, value, StringComparison.Ordinal))
        {
            return held;
        }

        Volatile.Write(ref Table[slot], value);
        return value;
    }
}
