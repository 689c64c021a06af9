namespace Evolution.Events.EngineIO.Protocol;

/// <summary>A decoded packet received from a client.</summary>
internal readonly record struct InboundPacket(EnginePacketType Type, string? Text, byte[]? Binary)
{
    public bool IsBinary => Binary is not null;
}

/// <summary>Pure decoders for Engine.IO 4 text packets and HTTP long-polling payloads.</summary>
internal static class EnginePacketParser
{
    public const char RecordSeparator = '\u001e';

    /// <summary>Decodes one text packet (<c>4hello</c>, <c>3</c>, <c>2probe</c>).</summary>
    public static bool TryParseText(string packet, out InboundPacket result, out string? error)
    {
        result = default;
        if (packet.Length == 0)
        {
            error = "empty packet";
            return false;
        }

        var digit = packet[0] - '0';
        if (digit is < 0 or > (int)EnginePacketType.Noop)
        {
            error = $"unknown packet type '{Truncate(packet)}'";
            return false;
        }

        error = null;
        result = new InboundPacket((EnginePacketType)digit, packet.Length > 1 ? packet[1..] : null, null);
        return true;
    }

    /// <summary>
    /// Decodes a polling payload: packets joined by the record separator, binary ones as
    /// <c>b</c> followed by base64. Stops at the first bad packet.
    /// </summary>
    public static bool TryParsePayload(string payload, List<InboundPacket> packets, out string? error)
    {
        error = null;
        var start = 0;
        while (start <= payload.Length)
        {
            var end = payload.IndexOf(RecordSeparator, start);
            if (end < 0)
            {
                end = payload.Length;
            }

            var part = payload.AsSpan(start, end - start);
            if (!TryParsePart(part, out var packet, out error))
            {
                return false;
            }

            packets.Add(packet);
            start = end + 1;
        }

        return true;
    }

    private static bool TryParsePart(ReadOnlySpan<char> part, out InboundPacket packet, out string? error)
    {
        packet = default;
        if (part.Length > 0 && part[0] == 'b')
        {
            var bytes = new byte[part.Length * 3 / 4 + 3];
            if (!Convert.TryFromBase64Chars(part[1..], bytes, out var written))
            {
                error = "invalid base64 in a binary packet";
                return false;
            }

            error = null;
            packet = new InboundPacket(EnginePacketType.Message, null, bytes.AsSpan(0, written).ToArray());
            return true;
        }

        return TryParseText(part.ToString(), out packet, out error);
    }

    private static string Truncate(string s) => s.Length <= 16 ? s : s[..16] + "…";
}
