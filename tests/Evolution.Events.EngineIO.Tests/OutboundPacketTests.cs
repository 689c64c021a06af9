using System.Text;
using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.EngineIO.Tests;

public class OutboundPacketTests
{
    [Fact]
    public void Control_packets_are_their_type_digit()
    {
        Assert.Equal("2", Encoding.UTF8.GetString(OutboundPacket.Ping.Bytes.Span));
        Assert.Equal("6", Encoding.UTF8.GetString(OutboundPacket.Noop.Bytes.Span));
        Assert.Equal("1", Encoding.UTF8.GetString(OutboundPacket.Close.Bytes.Span));
        Assert.Equal(EnginePacketType.Close, OutboundPacket.Close.Type);
    }

    [Fact]
    public void A_message_gets_the_4_prefix_and_utf8_bytes()
    {
        var packet = OutboundPacket.Message("héllo");
        Assert.Equal(EnginePacketType.Message, packet.Type);
        Assert.False(packet.IsBinary);
        Assert.Equal("4héllo", Encoding.UTF8.GetString(packet.Bytes.Span));
    }

    [Fact]
    public void Encoded_text_must_start_with_the_message_digit()
    {
        Assert.Throws<ArgumentException>(() => OutboundPacket.FromEncodedText("2[\"x\"]"u8.ToArray()));
        Assert.Throws<ArgumentException>(() => OutboundPacket.FromEncodedText(ReadOnlyMemory<byte>.Empty));
        var ok = OutboundPacket.FromEncodedText("42[\"x\"]"u8.ToArray());
        Assert.Equal("42[\"x\"]", Encoding.UTF8.GetString(ok.Bytes.Span));
    }

    [Fact]
    public void A_binary_packet_shares_the_callers_bytes()
    {
        var data = new byte[] { 1, 2, 3 };
        var packet = OutboundPacket.Binary(data);
        Assert.True(packet.IsBinary);
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(packet.Bytes, out var segment));
        Assert.Same(data, segment.Array);
    }
}
