using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.EngineIO.Tests;

public class EnginePacketParserTests
{
    [Theory]
    [InlineData("0{\"sid\":\"abc\"}", EnginePacketType.Open, "{\"sid\":\"abc\"}")]
    [InlineData("1", EnginePacketType.Close, null)]
    [InlineData("2", EnginePacketType.Ping, null)]
    [InlineData("2probe", EnginePacketType.Ping, "probe")]
    [InlineData("3", EnginePacketType.Pong, null)]
    [InlineData("3probe", EnginePacketType.Pong, "probe")]
    [InlineData("4hello", EnginePacketType.Message, "hello")]
    [InlineData("4", EnginePacketType.Message, null)]
    [InlineData("5", EnginePacketType.Upgrade, null)]
    [InlineData("6", EnginePacketType.Noop, null)]
    public void Every_text_packet_type_is_decoded(string input, EnginePacketType type, string? text)
    {
        Assert.True(EnginePacketParser.TryParseText(input, out var packet, out var error), error);
        Assert.Null(error);
        Assert.Equal(type, packet.Type);
        Assert.Equal(text, packet.Text);
        Assert.False(packet.IsBinary);
    }

    [Fact]
    public void A_message_keeps_unicode_and_separator_free_text_verbatim()
    {
        Assert.True(EnginePacketParser.TryParseText("42[\"é€😀\",{\"a\":[1,2]}]", out var packet, out _));
        Assert.Equal(EnginePacketType.Message, packet.Type);
        Assert.Equal("2[\"é€😀\",{\"a\":[1,2]}]", packet.Text);
    }

    [Theory]
    [InlineData("", "empty packet")]
    [InlineData("7", "unknown packet type")]
    [InlineData("9hello", "unknown packet type")]
    [InlineData("x", "unknown packet type")]
    [InlineData("/4", "unknown packet type")]
    [InlineData("b4", "unknown packet type")]
    public void Malformed_text_packets_are_rejected_with_a_reason(string input, string reason)
    {
        Assert.False(EnginePacketParser.TryParseText(input, out _, out var error));
        Assert.NotNull(error);
        Assert.Contains(reason, error);
    }

    [Fact]
    public void The_reason_quotes_the_bad_packet_but_truncates_it()
    {
        Assert.False(EnginePacketParser.TryParseText("8" + new string('x', 500), out _, out var error));
        Assert.StartsWith("unknown packet type '8xxx", error);
        Assert.True(error!.Length < 60, error);
    }

    [Fact]
    public void A_payload_is_split_at_record_separators_in_order()
    {
        var packets = new List<InboundPacket>();
        Assert.True(EnginePacketParser.TryParsePayload("4hello\u001e4world\u001e2\u001e3\u001e6\u001e1", packets, out var error), error);
        Assert.Equal(
            [EnginePacketType.Message, EnginePacketType.Message, EnginePacketType.Ping, EnginePacketType.Pong, EnginePacketType.Noop, EnginePacketType.Close],
            packets.Select(p => p.Type));
        Assert.Equal("hello", packets[0].Text);
        Assert.Equal("world", packets[1].Text);
    }

    [Fact]
    public void A_single_packet_payload_has_no_separator()
    {
        var packets = new List<InboundPacket>();
        Assert.True(EnginePacketParser.TryParsePayload("40{\"token\":\"x\"}", packets, out _));
        var packet = Assert.Single(packets);
        Assert.Equal("0{\"token\":\"x\"}", packet.Text);
    }

    [Fact]
    public void Binary_packets_are_b_plus_base64_and_mix_with_text_ones()
    {
        var packets = new List<InboundPacket>();
        var payload = "451-[\"bin\",{\"_placeholder\":true,\"num\":0}]\u001ebAQID/w==\u001ebAA==\u001e4after";
        Assert.True(EnginePacketParser.TryParsePayload(payload, packets, out var error), error);
        Assert.Equal(4, packets.Count);
        Assert.False(packets[0].IsBinary);
        Assert.True(packets[1].IsBinary);
        Assert.Equal(EnginePacketType.Message, packets[1].Type);
        Assert.Equal(new byte[] { 1, 2, 3, 255 }, packets[1].Binary);
        Assert.Equal(new byte[] { 0 }, packets[2].Binary);
        Assert.Null(packets[1].Text);
        Assert.Equal("after", packets[3].Text);
    }

    [Fact]
    public void A_large_binary_packet_decodes_exactly()
    {
        var data = Enumerable.Range(0, 10_000).Select(i => (byte)(i * 7)).ToArray();
        var packets = new List<InboundPacket>();
        Assert.True(EnginePacketParser.TryParsePayload("b" + Convert.ToBase64String(data), packets, out _));
        Assert.Equal(data, Assert.Single(packets).Binary);
    }

    [Theory]
    [InlineData("b!!!!", "invalid base64")]
    [InlineData("bAQI", "invalid base64")]
    [InlineData("4a\u001ebnot base64\u001e4b", "invalid base64")]
    [InlineData("4a\u001e9\u001e4b", "unknown packet type")]
    [InlineData("4a\u001e", "empty packet")]
    [InlineData("\u001e4a", "empty packet")]
    [InlineData("4a\u001e\u001e4b", "empty packet")]
    [InlineData("", "empty packet")]
    public void Malformed_payloads_are_rejected_with_a_reason(string payload, string reason)
    {
        var packets = new List<InboundPacket>();
        Assert.False(EnginePacketParser.TryParsePayload(payload, packets, out var error));
        Assert.NotNull(error);
        Assert.Contains(reason, error);
    }

    [Fact]
    public void Parsing_stops_at_the_first_bad_packet()
    {
        var packets = new List<InboundPacket>();
        Assert.False(EnginePacketParser.TryParsePayload("4one\u001e4two\u001ex\u001e4four", packets, out _));
        Assert.Equal(["one", "two"], packets.Select(p => p.Text));
    }
}
