using System.Text;

namespace Evolution.Events.EngineIO;

/// <summary>
/// Makes text a client chose (namespace names, reasons, parse errors) safe to log: control
/// characters are escaped (<c>\n</c>, <c>\r</c>, <c>\t</c>, else <c>\uXXXX</c>) and the result is cut to a
/// bound (marked <c>…(+N chars)</c>), so one packet can neither forge log lines nor make a log line large.
/// </summary>
internal static class LogText
{
    /// <summary>Default longest text kept, in characters (before escaping).</summary>
    public const int DefaultMaxLength = 200;

    /// <summary>The text with control characters escaped, cut to <paramref name="maxLength"/> characters (marked with <c>…(+N chars)</c>).</summary>
    public static string Bound(string? text, int maxLength = DefaultMaxLength)
    {
        if (string.IsNullOrEmpty(text))
        {
            return string.Empty;
        }

        var cut = text.Length > maxLength;
        var span = cut ? text.AsSpan(0, maxLength) : text.AsSpan();
        if (!cut && !NeedsEscaping(span))
        {
            return text;
        }

        var builder = new StringBuilder(span.Length + 8);
        foreach (var c in span)
        {
            switch (c)
            {
                case '\n':
                    builder.Append("\\n");
                    break;
                case '\r':
                    builder.Append("\\r");
                    break;
                case '\t':
                    builder.Append("\\t");
                    break;
                default:
                    if (char.IsControl(c) || c is '\u2028' or '\u2029' || char.IsSurrogate(c))
                    {
                        builder.Append("\\u").Append(((int)c).ToString("X4", System.Globalization.CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        builder.Append(c);
                    }

                    break;
            }
        }

        if (cut)
        {
            builder.Append("…(+").Append(text.Length - maxLength).Append(" chars)");
        }

        return builder.ToString();
    }

    private static bool NeedsEscaping(ReadOnlySpan<char> span)
    {
        foreach (var c in span)
        {
            if (char.IsControl(c) || c is '\u2028' or '\u2029' || char.IsSurrogate(c))
            {
                return true;
            }
        }

        return false;
    }
}
