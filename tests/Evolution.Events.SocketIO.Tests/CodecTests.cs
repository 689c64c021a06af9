using System.Text;
using System.Text.Json.Nodes;
using Evolution.Events.EngineIO.Protocol;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO.Tests;

public class CodecTests
{
    /// <summary>Encodes, checks the Engine.IO framing, decodes the text packet and reassembles attachments.</summary>
    private static SocketPacket RoundTrip(EncodedPacket encoded)
    {
        Assert.Equal(EnginePacketType.Message, encoded.Text.Type);
        Assert.False(encoded.Text.IsBinary);
        var wire = Encoding.UTF8.GetString(encoded.Text.Bytes.Span);
        Assert.StartsWith("4", wire);
        Assert.Equal(wire[1..], encoded.ToString());
        Assert.True(SocketPacketDecoder.TryDecode(wire[1..], out var packet, out var error), error);
        Assert.Equal(encoded.Attachments.Count, packet!.Attachments);
        if (packet.Attachments == 0)
        {
            return packet;
        }

        var reconstructor = new BinaryReconstructor(packet);
        SocketPacket? done = null;
        for (var i = 0; i < encoded.Attachments.Count; i++)
        {
            Assert.True(encoded.Attachments[i].IsBinary);
            var complete = reconstructor.TryAdd(encoded.Attachments[i].Bytes.ToArray(), out done, out error);
            Assert.Null(error);
            Assert.Equal(i == encoded.Attachments.Count - 1, complete);
        }

        return done!;
    }

    private static byte[] Bytes(JsonNode? node)
    {
        Assert.True(JsonArguments.TryGetBinary(node, out var bytes), $"not binary: {node?.ToJsonString()}");
        return bytes;
    }

    [Fact]
    public void Connect_round_trips_with_the_sid()
    {
        var encoded = SocketPacketEncoder.Connect("/", "abc123");
        Assert.Equal("0{\"sid\":\"abc123\"}", encoded.ToString());
        var packet = RoundTrip(encoded);
        Assert.Equal(SocketPacketType.Connect, packet.Type);
        Assert.Equal("/", packet.Namespace);
        Assert.Equal("abc123", packet.Data!["sid"]!.GetValue<string>());
    }

    [Fact]
    public void Connect_to_a_namespace_round_trips()
    {
        var encoded = SocketPacketEncoder.Connect("/admin", "s1");
        Assert.Equal("0/admin,{\"sid\":\"s1\"}", encoded.ToString());
        Assert.Equal("/admin", RoundTrip(encoded).Namespace);
    }

    [Theory]
    [InlineData("/", "1")]
    [InlineData("/admin", "1/admin,")]
    public void Disconnect_round_trips(string nsp, string wire)
    {
        var encoded = SocketPacketEncoder.Disconnect(nsp);
        Assert.Equal(wire, encoded.ToString());
        var packet = RoundTrip(encoded);
        Assert.Equal(SocketPacketType.Disconnect, packet.Type);
        Assert.Equal(nsp, packet.Namespace);
        Assert.Null(packet.Data);
    }

    [Fact]
    public void Event_round_trips_every_json_kind()
    {
        var encoded = SocketPacketEncoder.Event("/", "ev", ["s", 1, 2L, 1.5, true, false, null, new { a = 1, b = new[] { "x" } }]);
        Assert.Equal("2[\"ev\",\"s\",1,2,1.5,true,false,null,{\"a\":1,\"b\":[\"x\"]}]", encoded.ToString());
        var packet = RoundTrip(encoded);
        Assert.Equal(SocketPacketType.Event, packet.Type);
        Assert.Null(packet.Id);
        var data = packet.Data!.AsArray();
        Assert.Equal("ev", data[0]!.GetValue<string>());
        Assert.Equal(1, data[8]!["a"]!.GetValue<int>());
    }

    [Fact]
    public void Event_with_namespace_and_ack_id_round_trips()
    {
        var encoded = SocketPacketEncoder.Event("/chat", "msg", ["hi"], ackId: 42);
        Assert.Equal("2/chat,42[\"msg\",\"hi\"]", encoded.ToString());
        var packet = RoundTrip(encoded);
        Assert.Equal("/chat", packet.Namespace);
        Assert.Equal(42, packet.Id);
    }

    [Fact]
    public void Unicode_and_html_characters_are_not_escaped()
    {
        var encoded = SocketPacketEncoder.Event("/", "ev", ["é€😀<b>&'\"\u2028"]);
        Assert.Contains("é€", encoded.ToString());
        Assert.Contains("<b>&'", encoded.ToString());
        Assert.Equal("é€😀<b>&'\"\u2028", RoundTrip(encoded).Data![1]!.GetValue<string>());
    }

    [Fact]
    public void Ack_round_trips_with_its_id()
    {
        var encoded = SocketPacketEncoder.Ack("/", 7, ["ok", 2]);
        Assert.Equal("37[\"ok\",2]", encoded.ToString());
        var packet = RoundTrip(encoded);
        Assert.Equal(SocketPacketType.Ack, packet.Type);
        Assert.Equal(7, packet.Id);
        Assert.Equal(2, packet.Data!.AsArray().Count);
    }

    [Fact]
    public void Empty_ack_round_trips()
    {
        var encoded = SocketPacketEncoder.Ack("/ns", 0, []);
        Assert.Equal("3/ns,0[]", encoded.ToString());
        var packet = RoundTrip(encoded);
        Assert.Equal(0, packet.Id);
        Assert.Empty(packet.Data!.AsArray());
    }

    [Fact]
    public void ConnectError_round_trips_with_message_and_data()
    {
        var encoded = SocketPacketEncoder.ConnectError("/admin", "not allowed", new { code = 4 });
        Assert.Equal("4/admin,{\"message\":\"not allowed\",\"data\":{\"code\":4}}", encoded.ToString());
        var packet = RoundTrip(encoded);
        Assert.Equal(SocketPacketType.ConnectError, packet.Type);
        Assert.Equal("not allowed", packet.Data!["message"]!.GetValue<string>());
        Assert.Equal(4, packet.Data!["data"]!["code"]!.GetValue<int>());
    }

    [Fact]
    public void Binary_event_turns_byte_arrays_into_numbered_placeholders_and_back()
    {
        byte[] first = [1, 2, 3];
        byte[] second = [];
        var encoded = SocketPacketEncoder.Event("/", "bin", [first, "text", second]);
        Assert.Equal(
            "52-[\"bin\",{\"_placeholder\":true,\"num\":0},\"text\",{\"_placeholder\":true,\"num\":1}]",
            encoded.ToString());
        Assert.Equal(2, encoded.Attachments.Count);
        var packet = RoundTrip(encoded);
        Assert.Equal(SocketPacketType.BinaryEvent, packet.Type);
        Assert.Equal(first, Bytes(packet.Data![1]));
        Assert.Equal("text", packet.Data![2]!.GetValue<string>());
        Assert.Equal(second, Bytes(packet.Data![3]));
    }

    [Fact]
    public void Byte_arrays_inside_pocos_and_anonymous_objects_become_placeholders()
    {
        var encoded = SocketPacketEncoder.Event("/", "nested", [new Poco("file", [9, 8]), new { inner = new { blob = new byte[] { 7 } }, list = new[] { new byte[] { 6 } } }]);
        Assert.Equal(3, encoded.Attachments.Count);
        Assert.DoesNotContain("CQg", encoded.ToString()); // no base64 of {9,8}
        var packet = RoundTrip(encoded);
        Assert.Equal("file", packet.Data![1]!["name"]!.GetValue<string>());
        Assert.Equal(new byte[] { 9, 8 }, Bytes(packet.Data![1]!["content"]));
        Assert.Equal(new byte[] { 7 }, Bytes(packet.Data![2]!["inner"]!["blob"]));
        Assert.Equal(new byte[] { 6 }, Bytes(packet.Data![2]!["list"]![0]));
    }

    [Fact]
    public void Memory_segments_and_json_nodes_holding_bytes_are_binary_too()
    {
        var node = new JsonObject { ["raw"] = JsonValue.Create(new byte[] { 5, 5 }) };
        var encoded = SocketPacketEncoder.Event("/", "mix", [new ReadOnlyMemory<byte>([1]), new ArraySegment<byte>([0, 2, 0], 1, 1), node]);
        Assert.Equal(3, encoded.Attachments.Count);
        var packet = RoundTrip(encoded);
        Assert.Equal(new byte[] { 1 }, Bytes(packet.Data![1]));
        Assert.Equal(new byte[] { 2 }, Bytes(packet.Data![2]));
        Assert.Equal(new byte[] { 5, 5 }, Bytes(packet.Data![3]!["raw"]));
    }

    [Fact]
    public void A_decoded_binary_packet_re_encodes_its_bytes_as_attachments()
    {
        // what an echo handler does: the args it got (JsonValue holding byte[]) go straight back
        var original = RoundTrip(SocketPacketEncoder.Event("/", "bin", [new { data = new byte[] { 1, 2 } }]));
        var echoed = SocketPacketEncoder.Ack("/", 3, [original.Data![1]]);
        Assert.Equal("61-3[{\"data\":{\"_placeholder\":true,\"num\":0}}]", echoed.ToString());
        var packet = RoundTrip(echoed);
        Assert.Equal(SocketPacketType.BinaryAck, packet.Type);
        Assert.Equal(3, packet.Id);
        Assert.Equal(new byte[] { 1, 2 }, Bytes(packet.Data![0]!["data"]));
    }

    [Fact]
    public void Binary_ack_round_trips()
    {
        var encoded = SocketPacketEncoder.Ack("/files", 12, [new byte[] { 0xff }]);
        Assert.Equal("61-/files,12[{\"_placeholder\":true,\"num\":0}]", encoded.ToString());
        var packet = RoundTrip(encoded);
        Assert.Equal("/files", packet.Namespace);
        Assert.Equal(new byte[] { 0xff }, Bytes(packet.Data![0]));
    }

    [Fact]
    public void Byte_arrays_serialize_as_base64_outside_packet_encoding()
    {
        var json = System.Text.Json.JsonSerializer.Serialize(new Poco("x", [1, 2, 3]), JsonArguments.SerializerOptions);
        Assert.Equal("{\"name\":\"x\",\"content\":\"AQID\"}", json);
    }

    [Fact]
    public void RawJson_is_written_verbatim()
    {
        var raw = RawJson.FromString("{\"pre\":[1,2,{\"x\":null}]}");
        var encoded = SocketPacketEncoder.Event("/", "raw", [raw, raw]);
        Assert.Equal("2[\"raw\",{\"pre\":[1,2,{\"x\":null}]},{\"pre\":[1,2,{\"x\":null}]}]", encoded.ToString());
        Assert.Equal("{\"pre\":[1,2,{\"x\":null}]}", raw.ToString());
        Assert.Equal(2, RoundTrip(encoded).Data![1]!["pre"]![1]!.GetValue<int>());
    }

    [Fact]
    public void Invalid_RawJson_is_refused_at_encoding()
    {
        Assert.ThrowsAny<Exception>(() => SocketPacketEncoder.Event("/", "raw", [RawJson.FromString("{not json")]));
    }

    [Fact]
    public void A_JsonElement_argument_is_written_as_is()
    {
        using var doc = System.Text.Json.JsonDocument.Parse("[1,{\"k\":\"v\"}]");
        Assert.Equal("2[\"el\",[1,{\"k\":\"v\"}]]", SocketPacketEncoder.Event("/", "el", [doc.RootElement]).ToString());
    }

    [Theory]
    [InlineData("0", SocketPacketType.Connect, "/", null)]
    [InlineData("0/admin,", SocketPacketType.Connect, "/admin", null)]
    [InlineData("0/admin,{\"token\":\"t\"}", SocketPacketType.Connect, "/admin", null)]
    [InlineData("0/admin", SocketPacketType.Connect, "/admin", null)]
    [InlineData("1/x,", SocketPacketType.Disconnect, "/x", null)]
    [InlineData("2[\"a\"]", SocketPacketType.Event, "/", null)]
    [InlineData("2[42]", SocketPacketType.Event, "/", null)]
    [InlineData("212[\"a\"]", SocketPacketType.Event, "/", 12L)]
    [InlineData("2999999999999999[\"a\"]", SocketPacketType.Event, "/", 999_999_999_999_999L)] // 15 digits: the longest id taken
    [InlineData("2/n,0[\"a\"]", SocketPacketType.Event, "/n", 0L)]
    [InlineData("31[]", SocketPacketType.Ack, "/", 1L)]
    [InlineData("4{\"message\":\"m\"}", SocketPacketType.ConnectError, "/", null)]
    [InlineData("4\"just a string\"", SocketPacketType.ConnectError, "/", null)]
    [InlineData("51-[\"a\",{\"_placeholder\":true,\"num\":0}]", SocketPacketType.BinaryEvent, "/", null)]
    [InlineData("61-/n,5[{\"_placeholder\":true,\"num\":0}]", SocketPacketType.BinaryAck, "/n", 5L)]
    public void Valid_client_packets_decode(string text, SocketPacketType type, string nsp, long? id)
    {
        Assert.True(SocketPacketDecoder.TryDecode(text, out var packet, out var error), error);
        Assert.Equal(type, packet!.Type);
        Assert.Equal(nsp, packet.Namespace);
        Assert.Equal(id, packet.Id);
    }

    [Theory]
    [InlineData("", "empty packet")]
    [InlineData("7[\"a\"]", "unknown packet type")]
    [InlineData("9", "unknown packet type")]
    [InlineData("x", "unknown packet type")]
    [InlineData("5[\"a\"]", "illegal attachments")]
    [InlineData("5x-[\"a\"]", "illegal attachments")]
    [InlineData("5-1-[\"a\"]", "illegal attachments")]
    [InlineData("6-[]", "illegal attachments")]
    [InlineData("565-[\"a\"]", "too many attachments")]
    [InlineData("2[\"a\",", "invalid JSON")]
    [InlineData("2{bad}", "invalid JSON")]
    [InlineData("2/ns,[\"a\",]", "invalid JSON")]
    [InlineData("2{\"a\":1}", "invalid payload")]
    [InlineData("2\"str\"", "invalid payload")]
    [InlineData("2[]", "invalid payload")]
    [InlineData("2", "invalid payload")]
    [InlineData("2[null]", "invalid payload")]
    [InlineData("2[{\"a\":1}]", "invalid payload")]
    [InlineData("2[[\"a\"]]", "invalid payload")]
    [InlineData("2[true]", "invalid payload")]
    [InlineData("2[\"a\",{\"k\":1,\"k\":2}]", "invalid JSON")] // duplicate keys: refused here, not on first access
    [InlineData("2[\"connect\"]", "invalid payload")]
    [InlineData("2[\"connect_error\",1]", "invalid payload")]
    [InlineData("2[\"disconnect\"]", "invalid payload")]
    [InlineData("2[\"disconnecting\"]", "invalid payload")]
    [InlineData("2[\"newListener\"]", "invalid payload")]
    [InlineData("2[\"removeListener\"]", "invalid payload")]
    [InlineData("3[]", "invalid payload")]
    [InlineData("3/n,[\"x\"]", "invalid payload")]
    [InlineData("61-[{\"_placeholder\":true,\"num\":0}]", "invalid payload")]
    [InlineData("31{}", "invalid payload")]
    [InlineData("0[1]", "invalid payload")]
    [InlineData("0\"tok\"", "invalid payload")]
    [InlineData("1{}", "invalid payload")]
    [InlineData("4[1]", "invalid payload")]
    [InlineData("4", "invalid payload")]
    [InlineData("21234567890123456[\"a\"]", "illegal ack id")]
    public void Malformed_packets_are_rejected_with_a_reason(string text, string reason)
    {
        Assert.False(SocketPacketDecoder.TryDecode(text, out var packet, out var error));
        Assert.Null(packet);
        Assert.NotNull(error);
        Assert.Contains(reason, error);
    }

    [Fact]
    public void The_attachment_limit_is_configurable()
    {
        var limits = new SocketPacketLimits(MaxAttachments: 2);
        Assert.True(SocketPacketDecoder.TryDecode("52-[\"a\"]", limits, out _, out _));
        Assert.False(SocketPacketDecoder.TryDecode("53-[\"a\"]", limits, out _, out var error));
        Assert.Equal("too many attachments (3 > 2)", error);
    }

    [Fact]
    public void A_namespace_over_the_limit_is_rejected()
    {
        var longName = "/" + new string('n', 256);
        Assert.False(SocketPacketDecoder.TryDecode("0" + longName + ",", out _, out var error));
        Assert.Equal("namespace too long", error);
        Assert.True(SocketPacketDecoder.TryDecode("0" + longName[..256] + ",", out var ok, out _));
        Assert.Equal(256, ok!.Namespace.Length);
        Assert.False(SocketPacketDecoder.TryDecode("0/abcd,", new SocketPacketLimits(MaxNamespaceLength: 4), out _, out error));
        Assert.Equal("namespace too long", error);
    }

    [Fact]
    public void Json_nesting_deeper_than_the_limit_is_rejected()
    {
        var deep = "2[\"a\"," + new string('[', 100) + new string(']', 100) + "]";
        Assert.False(SocketPacketDecoder.TryDecode(deep, out _, out var error));
        Assert.Equal("invalid JSON payload", error);
    }

    [Fact]
    public void Reconstructor_waits_for_every_attachment()
    {
        Assert.True(SocketPacketDecoder.TryDecode("53-[\"a\",{\"_placeholder\":true,\"num\":2},{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", out var packet, out _));
        var reconstructor = new BinaryReconstructor(packet!);
        Assert.False(reconstructor.TryAdd([0], out var done, out var error));
        Assert.Null(done);
        Assert.Null(error);
        Assert.False(reconstructor.TryAdd([1], out done, out error));
        Assert.Null(error);
        Assert.True(reconstructor.TryAdd([2], out done, out error));
        Assert.Equal(new byte[] { 2 }, Bytes(done!.Data![1]));
        Assert.Equal(new byte[] { 0 }, Bytes(done.Data![2]));
        Assert.Equal(new byte[] { 1 }, Bytes(done.Data![3]));
    }

    [Theory]
    [InlineData("51-[\"a\",{\"_placeholder\":true,\"num\":1}]")]
    [InlineData("51-[\"a\",{\"_placeholder\":true,\"num\":-1}]")]
    public void A_placeholder_without_its_attachment_is_an_error(string text)
    {
        Assert.True(SocketPacketDecoder.TryDecode(text, out var packet, out _));
        var reconstructor = new BinaryReconstructor(packet!);
        Assert.False(reconstructor.TryAdd([1], out var done, out var error));
        Assert.Null(done);
        Assert.Contains("has no attachment", error);
    }

    [Fact]
    public void Objects_that_only_look_like_placeholders_are_left_alone()
    {
        Assert.True(SocketPacketDecoder.TryDecode("51-[\"a\",{\"_placeholder\":\"true\",\"num\":0},{\"_placeholder\":true,\"num\":0,\"x\":1},{\"_placeholder\":true,\"num\":0}]", out var packet, out _));
        Assert.True(new BinaryReconstructor(packet!).TryAdd([4], out var done, out _));
        Assert.False(JsonArguments.TryGetBinary(done!.Data![1], out _));
        Assert.False(JsonArguments.TryGetBinary(done.Data![2], out _));
        Assert.Equal(new byte[] { 4 }, Bytes(done.Data![3]));
    }

    [Fact]
    public void A_plain_json_string_is_not_binary()
    {
        Assert.True(SocketPacketDecoder.TryDecode("2[\"a\",\"AQID\"]", out var packet, out _));
        Assert.False(JsonArguments.TryGetBinary(packet!.Data![1], out _));
        Assert.False(JsonArguments.TryGetBinary(JsonValue.Create("AQID"), out _));
        Assert.False(JsonArguments.TryGetBinary(null, out _));
    }

    [Fact]
    public void Connect_with_a_session_id_for_recovery_carries_the_pid()
    {
        var encoded = SocketPacketEncoder.Connect("/", "s1", "p1");
        Assert.Equal("0{\"sid\":\"s1\",\"pid\":\"p1\"}", encoded.ToString());
        Assert.Equal("p1", RoundTrip(encoded).Data!["pid"]!.GetValue<string>());
    }

    [Fact]
    public void Packets_on_a_long_namespace_round_trip()
    {
        // the decoder takes namespaces up to 256 characters; the encoder writes them, whatever the payload size
        var nsp = "/" + new string('n', 255);
        Assert.Equal(nsp, RoundTrip(SocketPacketEncoder.Disconnect(nsp)).Namespace);
        Assert.Equal("1" + nsp + ",", SocketPacketEncoder.Disconnect(nsp).ToString());
        Assert.Equal(nsp, RoundTrip(SocketPacketEncoder.Ack(nsp, 1, [])).Namespace);
    }

    [Fact]
    public void Json_node_arguments_keep_arrays_nulls_and_numbers()
    {
        var node = new JsonArray(1, null, "s", new JsonObject { ["n"] = null, ["a"] = new JsonArray(true) });
        var encoded = SocketPacketEncoder.Event("/", "nodes", [node, JsonValue.Create(2.5)]);
        Assert.Equal("2[\"nodes\",[1,null,\"s\",{\"n\":null,\"a\":[true]}],2.5]", encoded.ToString());
        Assert.Equal(4, RoundTrip(encoded).Data![1]!.AsArray().Count);
    }

    [Fact]
    public void Strings_inside_pocos_are_not_escaped_either()
    {
        var encoded = SocketPacketEncoder.Event("/", "poco", [new { text = "é<b>&'" }]);
        Assert.Equal("2[\"poco\",{\"text\":\"é<b>&'\"}]", encoded.ToString());
    }

    [Fact]
    public void Encoding_a_poco_with_bytes_leaves_plain_serialization_base64_on_the_same_thread()
    {
        Assert.Single(SocketPacketEncoder.Event("/", "bin", [new Poco("a", [1])]).Attachments);
        // the placeholder collector is only set while a packet is encoded
        Assert.Equal("{\"name\":\"x\",\"content\":\"AQID\"}",
            System.Text.Json.JsonSerializer.Serialize(new Poco("x", [1, 2, 3]), JsonArguments.SerializerOptions));
    }

    [Fact]
    public void Byte_arrays_deserialize_from_base64_and_null()
    {
        var options = JsonArguments.SerializerOptions;
        Assert.Equal(new byte[] { 1, 2, 3 }, System.Text.Json.JsonSerializer.Deserialize<Poco>("{\"name\":\"x\",\"content\":\"AQID\"}", options)!.Content);
        Assert.Null(System.Text.Json.JsonSerializer.Deserialize<Poco>("{\"name\":\"x\",\"content\":null}", options)!.Content);
    }

    [Fact]
    public void An_unknown_packet_type_has_no_valid_payload()
    {
        // IsPayloadValid serves the other parsers (msgpack), which hand it whatever type number they read
        Assert.False(SocketPacketDecoder.IsPayloadValid((SocketPacketType)7, new JsonArray("a"), 1));
    }

    [Fact]
    public void Attachments_may_total_exactly_the_byte_bound_but_not_more()
    {
        const string text = "52-[\"a\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]";
        Assert.True(SocketPacketDecoder.TryDecode(text, out var packet, out _));
        var atBound = new BinaryReconstructor(packet!, maxBytes: 3);
        Assert.False(atBound.TryAdd([1, 2], out _, out var error));
        Assert.Null(error);
        Assert.True(atBound.TryAdd([3], out var done, out error), error);
        Assert.Equal(new byte[] { 3 }, Bytes(done!.Data![2]));

        Assert.True(SocketPacketDecoder.TryDecode(text, out packet, out _));
        var overBound = new BinaryReconstructor(packet!, maxBytes: 2);
        Assert.False(overBound.TryAdd([1, 2], out _, out error));
        Assert.Null(error);
        Assert.False(overBound.TryAdd([3], out done, out error));
        Assert.Null(done);
        Assert.Equal("binary attachments too large (over 2 bytes)", error);
    }

    [Fact]
    public void A_placeholder_inside_an_object_without_its_attachment_is_an_error()
    {
        Assert.True(SocketPacketDecoder.TryDecode("51-[\"a\",{\"file\":{\"_placeholder\":true,\"num\":3}}]", out var packet, out _));
        Assert.False(new BinaryReconstructor(packet!).TryAdd([1], out var done, out var error));
        Assert.Null(done);
        Assert.Equal("placeholder 3 has no attachment", error);
    }

    private sealed record Poco(string Name, byte[] Content);
}
