using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;

namespace Evolution.Events.Gateway.Events;

/// <summary>
/// How the gateway writes the JSON it sends to clients (envelopes, simple frames, relayed payloads): text stays
/// UTF-8 as the producer sent it. The default encoder escapes every non-ASCII character (<c>é</c> 2 bytes → 6,
/// an emoji 4 → 12), so 3 MB of Portuguese text became a 13 MB envelope; even
/// <see cref="JavaScriptEncoder.UnsafeRelaxedJsonEscaping"/> still escapes emoji. <see cref="Encoder"/> escapes
/// only what JSON requires (<c>"</c>, <c>\</c>, control characters) and invalid text. It does not escape
/// HTML-sensitive characters (<c>&lt; &gt; &amp; '</c>): this JSON goes to sockets and HTTP APIs, never into an
/// HTML page, and a client that puts received text into HTML must escape it there anyway.
/// </summary>
public static class GatewayJson
{
    /// <summary>The encoder described above.</summary>
    public static JavaScriptEncoder Encoder { get; } = new MinimalJsonEncoder();

    /// <summary>Writer options with <see cref="Encoder"/>.</summary>
    public static JsonWriterOptions WriterOptions { get; } = new() { Encoder = Encoder };

    /// <summary>Serializer options with <see cref="Encoder"/> (otherwise the defaults).</summary>
    public static JsonSerializerOptions SerializerOptions { get; } = new() { Encoder = Encoder };

    private sealed class MinimalJsonEncoder : JavaScriptEncoder
    {
        private static readonly SearchValues<byte> Utf8ToEscape = SearchValues.Create(
            [.. Enumerable.Range(0, 0x20).Select(b => (byte)b), (byte)'"', (byte)'\\']);

        private static readonly SearchValues<char> CharsToEscape = SearchValues.Create(
            [.. Enumerable.Range(0, 0x20).Select(c => (char)c), '"', '\\']);

        // \uXXXX per UTF-16 unit
        public override int MaxOutputCharactersPerInputCharacter => 6;

        public override bool WillEncode(int unicodeScalar) =>
            unicodeScalar < 0x20 || unicodeScalar == '"' || unicodeScalar == '\\'
            || !Rune.IsValid(unicodeScalar);

        public override int FindFirstCharacterToEncodeUtf8(ReadOnlySpan<byte> utf8Text)
        {
            // valid UTF-8 (always, for text that came through the JSON reader): one vectorized search;
            // otherwise the base class walks scalar by scalar and reports the first invalid sequence
            return Utf8.IsValid(utf8Text) ? utf8Text.IndexOfAny(Utf8ToEscape) : base.FindFirstCharacterToEncodeUtf8(utf8Text);
        }

        public override unsafe int FindFirstCharacterToEncode(char* text, int textLength)
        {
            var span = new ReadOnlySpan<char>(text, textLength);
            for (var i = 0; i < span.Length; i++)
            {
                var c = span[i];
                if (CharsToEscape.Contains(c))
                    return i;
                if (char.IsHighSurrogate(c))
                {
                    if (i + 1 >= span.Length || !char.IsLowSurrogate(span[i + 1]))
                        return i;
                    i++;
                }
                else if (char.IsLowSurrogate(c))
                {
                    return i;
                }
            }
            return -1;
        }

        public override unsafe bool TryEncodeUnicodeScalar(int unicodeScalar, char* buffer, int bufferLength, out int numberOfCharactersWritten)
        {
            var output = new Span<char>(buffer, bufferLength);
            string? shortForm = unicodeScalar switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '\b' => "\\b",
                '\f' => "\\f",
                _ => null,
            };
            if (shortForm is not null)
                return TryWrite(shortForm, output, out numberOfCharactersWritten);
            if (!WillEncode(unicodeScalar))
                return new Rune(unicodeScalar).TryEncodeToUtf16(output, out numberOfCharactersWritten);
            return TryWrite(string.Create(CultureInfo.InvariantCulture, $"\\u{unicodeScalar:X4}"), output, out numberOfCharactersWritten);
        }

        private static bool TryWrite(string text, Span<char> output, out int written)
        {
            written = 0;
            if (text.Length > output.Length)
                return false;
            text.CopyTo(output);
            written = text.Length;
            return true;
        }
    }
}
