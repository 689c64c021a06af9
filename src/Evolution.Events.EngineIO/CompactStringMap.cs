using System.Diagnostics.CodeAnalysis;

namespace Evolution.Events.EngineIO;

/// <summary>
/// A read-only string map in one array (key, value, key, value…) searched in order: what an idle session keeps of
/// its handshake's headers and query. A <see cref="Dictionary{TKey,TValue}"/> of ten headers holds its buckets,
/// entries and hash codes (about 430 bytes); this holds the references (about 200). A handshake has a few dozen
/// entries at most (the headers kept are bounded by <see cref="EngineRequest.From(Microsoft.AspNetCore.Http.HttpContext, int)"/>),
/// and lookups are rare (middlewares, handlers), so a linear search costs nothing that matters.
/// </summary>
internal sealed class CompactStringMap : IReadOnlyDictionary<string, string>
{
    private readonly string[] _items;
    private readonly StringComparison _comparison;

    /// <param name="items">Keys and values alternated, keys distinct under <paramref name="comparison"/>; kept, not copied.</param>
    /// <param name="comparison">How keys compare.</param>
    public CompactStringMap(string[] items, StringComparison comparison)
    {
        _items = items;
        _comparison = comparison;
    }

    public int Count => _items.Length / 2;

    public string this[string key] => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"'{key}' is not in the map.");

    public IEnumerable<string> Keys
    {
        get
        {
            for (var i = 0; i < _items.Length; i += 2)
            {
                yield return _items[i];
            }
        }
    }

    public IEnumerable<string> Values
    {
        get
        {
            for (var i = 1; i < _items.Length; i += 2)
            {
                yield return _items[i];
            }
        }
    }

    public bool ContainsKey(string key) => IndexOf(key) >= 0;

    public bool TryGetValue(string key, [MaybeNullWhen(false)] out string value)
    {
        var i = IndexOf(key);
        value = i >= 0 ? _items[i + 1] : null;
        return i >= 0;
    }

    public IEnumerator<KeyValuePair<string, string>> GetEnumerator()
    {
        for (var i = 0; i < _items.Length; i += 2)
        {
            yield return new KeyValuePair<string, string>(_items[i], _items[i + 1]);
        }
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    private int IndexOf(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        for (var i = 0; i < _items.Length; i += 2)
        {
            if (string.Equals(_items[i], key, _comparison))
            {
                return i;
            }
        }

        return -1;
    }
}
