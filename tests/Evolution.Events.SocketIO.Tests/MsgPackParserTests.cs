using System.Buffers;
using System.Text.Json.Nodes;
using Evolution.Events.SocketIO.MsgPack;
using Evolution.Events.SocketIO.Protocol;
using MessagePack;

namespace Evolution.Events.SocketIO.Tests;

/// <summary><see cref="MsgPackParser"/> on its own: the wire form, round trips, the bounds, notepack.io's extensions.</summary>
public class MsgPackParserTests
{
    private static readonly MsgPackParser Parser = MsgPackParser.Instance;
    private static readonly SocketPacketLimits Limits = SocketPacketLimits.Default;

    [Fact]
    public void An_event_with_bytes_is_one_binary_message_holding_type_data_nsp_id()
    {
        var packet = Parser.Encode(SocketPacketEncoder.Event("/chat", "file", [new byte[] { 1, 2, 3 }, "x"], ackId: 7));

        Assert.True(packet.Text.IsBinary);
        Assert.Empty(packet.Attachments);
        var reader = new MessagePackReader(packet.Text.Bytes);
        Assert.Equal(4, reader.ReadMapHeader());
        Assert.Equal("type", reader.ReadString());
        Assert.Equal(2, reader.ReadInt32()); // EVENT: the msgpack parser has no BINARY_EVENT
        Assert.Equal("data", reader.ReadString());
        Assert.Equal(3, reader.ReadArrayHeader());
        Assert.Equal("file", reader.ReadString());
        Assert.Equal(MessagePackType.Binary, reader.NextMessagePackType);
        Assert.Equal(new byte[] { 1, 2, 3 }, reader.ReadBytes()!.Value.ToArray());
        Assert.Equal("x", reader.ReadString());
        Assert.Equal("nsp", reader.ReadString());
        Assert.Equal("/chat", reader.ReadString());
        Assert.Equal("id", reader.ReadString());
        Assert.Equal(7, reader.ReadInt64());
        Assert.True(reader.End);
    }

    [Fact]
    public void Packets_without_data_or_id_leave_the_keys_out()
    {
        var reader = new MessagePackReader(Parser.Encode(SocketPacketEncoder.Disconnect("/")).Text.Bytes);
        Assert.Equal(2, reader.ReadMapHeader());
        Assert.Equal("type", reader.ReadString());
        Assert.Equal(1, reader.ReadInt32());
        Assert.Equal("nsp", reader.ReadString());
        Assert.Equal("/", reader.ReadString());
    }

    [Fact]
    public void A_broadcast_is_encoded_once_and_the_default_parser_adds_nothing()
    {
        var packet = SocketPacketEncoder.Event("/", "tick", [1]);

        Assert.Same(packet, DefaultSocketIOParser.Instance.Encode(packet));
        var first = Parser.Encode(packet);
        Assert.Same(first, Parser.Encode(packet));
        Assert.NotSame(packet, first);
    }

    [Fact]
    public void Server_packets_round_trip()
    {
        var cases = new[]
        {
            SocketPacketEncoder.Event("/", "ev", ["s", 1, 2.5, true, null, JsonNode.Parse("{\"a\":[1,{\"b\":null}]}"), new byte[] { 9, 8 }]),
            SocketPacketEncoder.Event("/nsp", "ev", [], ackId: 12),
            SocketPacketEncoder.Ack("/nsp", 5, [new byte[300], "ok"]),
            SocketPacketEncoder.Connect("/", "sid1", "pid1"),
            SocketPacketEncoder.ConnectError("/admin", "not allowed", new { reason = "bad" }),
            SocketPacketEncoder.Disconnect("/x"),
        };

        foreach (var original in cases)
        {
            var (type, nsp, id, _) = original.GetParts();
            var wire = Parser.Encode(original);
            Assert.True(Parser.TryDecode(wire.Text.Bytes.ToArray(), Limits, out var decoded, out var error), error);
            var expectedType = type switch
            {
                SocketPacketType.BinaryEvent => SocketPacketType.Event,
                SocketPacketType.BinaryAck => SocketPacketType.Ack,
                _ => type,
            };
            Assert.Equal(expectedType, decoded!.Type);
            Assert.Equal(nsp, decoded.Namespace);
            Assert.Equal(id, decoded.Id);
            // the decoded data re-encoded in the default form is the original packet
            if (type is SocketPacketType.Event or SocketPacketType.BinaryEvent)
            {
                var args = decoded.Data!.AsArray().Skip(1).Cast<object?>().ToArray();
                var again = SocketPacketEncoder.Event(nsp, (string)decoded.Data![0]!, args, id);
                Assert.Equal(original.ToString(), again.ToString());
                Assert.Equal(original.Attachments.Select(a => a.Bytes.ToArray()), again.Attachments.Select(a => a.Bytes.ToArray()));
            }
        }
    }

    [Fact]
    public void A_recovery_offset_is_the_last_event_argument()
    {
        var kept = SocketPacketEncoder.Event("/", "tick", [new byte[] { 1 }]).WithOffset("42-0");

        Assert.True(Parser.TryDecode(Parser.Encode(kept).Text.Bytes.ToArray(), Limits, out var decoded, out _));
        Assert.Equal("42-0", (string?)decoded!.Data!.AsArray()[^1]);
        Assert.True(JsonArguments.TryGetBinary(decoded.Data[1], out var bytes));
        Assert.Equal(new byte[] { 1 }, bytes);
    }

    [Fact]
    public void Client_packets_decode_with_notepack_extensions()
    {
        // what socket.io-client sends: {type, data, options, nsp, id: undefined}; a browser's ArrayBuffer is ext 8 type 0;
        // a Date is fixext 8 type 0 (ms since 1970); undefined is fixext 1 type 0
        var message = Write((ref MessagePackWriter w) =>
        {
            w.WriteMapHeader(5);
            w.Write("type");
            w.Write(2);
            w.Write("data");
            w.WriteArrayHeader(5);
            w.Write("ev");
            w.WriteRaw(new byte[] { 0xc7, 2, 0, 5, 6 }); // ext 8 even for 2 bytes, as notepack writes it
            w.WriteExtensionFormatHeader(new ExtensionHeader(0, 8));
            w.WriteRaw(new byte[] { 0, 0, 0, 0, 0, 0, 0x03, 0xE8 }); // 1000 ms
            w.WriteExtensionFormatHeader(new ExtensionHeader(0, 1));
            w.WriteRaw(new byte[] { 0 });
            w.WriteMapHeader(2);
            w.Write("keep");
            w.Write(1);
            w.Write("gone");
            w.WriteExtensionFormatHeader(new ExtensionHeader(0, 1));
            w.WriteRaw(new byte[] { 0 });
            w.Write("options");
            w.WriteMapHeader(1);
            w.Write("compress");
            w.Write(true);
            w.Write("nsp");
            w.Write("/");
            w.Write("id");
            w.WriteExtensionFormatHeader(new ExtensionHeader(0, 1));
            w.WriteRaw(new byte[] { 0 });
        });

        Assert.True(Parser.TryDecode(message, Limits, out var packet, out var error), error);
        Assert.Null(packet!.Id);
        var data = packet.Data!.AsArray();
        Assert.True(JsonArguments.TryGetBinary(data[1], out var bytes));
        Assert.Equal(new byte[] { 5, 6 }, bytes);
        Assert.Equal("1970-01-01T00:00:01.000Z", (string?)data[2]);
        Assert.Null(data[3]);
        Json.Equal("{\"keep\":1}", data[4]);
    }

    [Theory]
    [InlineData("not-a-map", "not a map")]
    [InlineData("type-5", "invalid packet type")]
    [InlineData("no-nsp", "invalid namespace")]
    [InlineData("reserved", "invalid payload")]
    [InlineData("ack-no-id", "invalid payload")]
    [InlineData("deep", "nested too deeply")]
    [InlineData("duplicate", "duplicate key")]
    [InlineData("ext-5", "extension type 5")]
    [InlineData("truncated", "MessagePack")]
    [InlineData("long-nsp", "namespace too long")]
    [InlineData("trailing", "trailing bytes")]
    public void Bad_messages_are_refused_with_a_clear_error(string kind, string expected)
    {
        var message = kind switch
        {
            "not-a-map" => Write((ref MessagePackWriter w) => w.Write("hello")),
            "type-5" => Packet(5, "/", (ref MessagePackWriter w) => w.WriteArrayHeader(0)),
            "no-nsp" => Write((ref MessagePackWriter w) =>
            {
                w.WriteMapHeader(1);
                w.Write("type");
                w.Write(0);
            }),
            "reserved" => Packet(2, "/", (ref MessagePackWriter w) =>
            {
                w.WriteArrayHeader(1);
                w.Write("connect");
            }),
            "ack-no-id" => Packet(3, "/", (ref MessagePackWriter w) => w.WriteArrayHeader(0)),
            "deep" => Packet(2, "/", (ref MessagePackWriter w) =>
            {
                w.WriteArrayHeader(2);
                w.Write("ev");
                for (var i = 0; i < 100; i++)
                {
                    w.WriteArrayHeader(1);
                }

                w.WriteNil();
            }),
            "duplicate" => Packet(2, "/", (ref MessagePackWriter w) =>
            {
                w.WriteArrayHeader(2);
                w.Write("ev");
                w.WriteMapHeader(2);
                w.Write("a");
                w.Write(1);
                w.Write("a");
                w.Write(2);
            }),
            "ext-5" => Packet(2, "/", (ref MessagePackWriter w) =>
            {
                w.WriteArrayHeader(2);
                w.Write("ev");
                w.WriteExtensionFormatHeader(new ExtensionHeader(5, 1));
                w.WriteRaw(new byte[] { 1 });
            }),
            "truncated" => Packet(2, "/", (ref MessagePackWriter w) =>
            {
                w.WriteArrayHeader(1);
                w.Write("ev");
            })[..^3],
            "long-nsp" => Packet(0, "/" + new string('n', 300), null),
            "trailing" => [.. Packet(1, "/", null), 0xc0],
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };

        Assert.False(Parser.TryDecode(message, Limits, out var packet, out var error));
        Assert.Null(packet);
        Assert.Contains(expected, error);
    }

    [Fact]
    public void Random_and_mutated_messages_never_throw()
    {
        var random = new Random(1234);
        var valid = Parser.Encode(SocketPacketEncoder.Event("/n", "ev", ["s", 1, 2.5, new byte[] { 1, 2 }, JsonNode.Parse("{\"a\":[null,true]}")], 3)).Text.Bytes.ToArray();
        for (var i = 0; i < 20_000; i++)
        {
            byte[] message;
            if (i % 2 == 0)
            {
                message = new byte[random.Next(0, 64)];
                random.NextBytes(message);
            }
            else
            {
                message = (byte[])valid.Clone();
                for (var k = random.Next(1, 4); k > 0; k--)
                {
                    message[random.Next(message.Length)] = (byte)random.Next(256);
                }

                message = message[..random.Next(1, message.Length + 1)];
            }

            var ok = Parser.TryDecode(message, Limits, out var packet, out var error);
            Assert.True(ok ? packet is not null : error is not null);
        }
    }

    [Fact]
    public void A_text_message_is_refused()
    {
        Assert.False(Parser.TryDecode("0", Limits, out _, out var error));
        Assert.Contains("msgpack", error);
    }

    private static byte[] Packet(int type, string nsp, WriteAction? data) => Write((ref MessagePackWriter w) =>
    {
        w.WriteMapHeader(data is null ? 2 : 3);
        w.Write("type");
        w.Write(type);
        w.Write("nsp");
        w.Write(nsp);
        if (data is not null)
        {
            w.Write("data");
            data(ref w);
        }
    });

    private delegate void WriteAction(ref MessagePackWriter writer);

    private static byte[] Write(WriteAction write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(buffer);
        write(ref writer);
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }
}
