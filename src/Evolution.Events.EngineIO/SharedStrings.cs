namespace Evolution.Events.EngineIO;

/// <summary>
/// A small lossy intern table for the strings every handshake repeats (header names, <c>Host</c>, <c>User-Agent</c>,
/// <c>EIO=4</c>, <c>transport=websocket</c>, the URL of a WebSocket handshake): each connection's
/// <see cref="EngineRequest"/> keeps one shared instance instead of its own copy. Strings are immutable, so sharing
/// them changes nothing a caller can see.
/// </summary>
/// <remarks>
/// Four-way set-associative: a string hashes to a set of four entries, enters at the front and is evicted only after
/// four other strings of its set came in after it; a hit moves it one place forward. A handshake repeats a dozen or
/// so strings, so with one entry per slot two of them (or one and a value unique to the handshake) sharing a slot
/// would replace each other on every handshake and neither would ever be shared; with four, that takes five strings
/// in one of 256 sets. Values unique to a handshake (<see cref="IsUnique"/>) never enter the table. No lock: racing
/// writers may lose or duplicate an entry, which only costs a copy.
/// </remarks>
internal static class SharedStrings
{
    private const int Sets = 256; // a power of two
    private const int Ways = 4;
    private const int MaxLength = 256;
    private static readonly string?[] Table = new string?[Sets * Ways];

    /// <summary>The shared string equal to <paramref name="value"/>, else <paramref name="value"/> itself (entered when short enough).</summary>
    public static string Share(string value) => Share(value, value);

    /// <summary>
    /// The shared string equal to <paramref name="value"/>, made (and entered) only when the table has none: what a
    /// parser reads from bytes costs nothing once its string has been seen.
    /// </summary>
    public static string Share(ReadOnlySpan<char> value) => Share(value, null);

    /// <summary>Looks <paramref name="value"/> up; on a miss enters <paramref name="owned"/> (its string, if the caller has one) or a new one.</summary>
    private static string Share(ReadOnlySpan<char> value, string? owned)
    {
        if (value.Length is 0 or > MaxLength)
        {
            return value.Length == 0 ? string.Empty : owned ?? new string(value);
        }

        var first = SetOf(value) * Ways;
        return Find(value, first) ?? Enter(owned ?? new string(value), first);
    }

    private static string? Find(ReadOnlySpan<char> value, int first)
    {
        for (var way = first; way < first + Ways; way++)
        {
            var held = Volatile.Read(ref Table[way]);
            if (held is null)
            {
                return null;
            }

            if (value.SequenceEqual(held))
            {
                if (way > first)
                {
                    // a string found again moves one place towards the front, so what keeps coming back outlives
                    // what came once (a polling request's t=, a forwarded-for address)
                    Volatile.Write(ref Table[way], Volatile.Read(ref Table[way - 1]));
                    Volatile.Write(ref Table[way - 1], held);
                }

                return held;
            }
        }

        return null;
    }

    private static string Enter(string value, int first)
    {
        // the newest enters first, the oldest of the set leaves
        for (var way = first + Ways - 1; way > first; way--)
        {
            Volatile.Write(ref Table[way], Volatile.Read(ref Table[way - 1]));
        }

        Volatile.Write(ref Table[first], value);
        return value;
    }

    /// <summary>The set <paramref name="value"/> goes to (tests find colliding strings with it).</summary>
    internal static int SetOf(ReadOnlySpan<char> value) => (int)((uint)string.GetHashCode(value) & (Sets - 1));

    /// <summary>Headers whose value differs on every handshake: sharing them would only evict the repeated ones.</summary>
    public static bool IsUnique(string headerName) =>
        headerName.Equals("Sec-WebSocket-Key", StringComparison.OrdinalIgnoreCase);
}
