using System.Collections.Frozen;
using System.Text.RegularExpressions;

namespace Evolution.Events.Gateway.Instances;

/// <summary>A registered instance. <see cref="Token"/> is a secret: never log it.</summary>
public sealed record InstanceInfo(string Name, string Token, DateTimeOffset CreatedAt);

/// <summary>
/// An instance's websocket settings. <see cref="Events"/> holds CONSTANT_CASE names;
/// empty means every event.
/// </summary>
public sealed class InstanceSettings
{
    private readonly FrozenSet<string> _events;

    public InstanceSettings(bool enabled, IEnumerable<string> events)
    {
        Enabled = enabled;
        Events = [.. events.Distinct(StringComparer.Ordinal)];
        _events = Events.ToFrozenSet(StringComparer.Ordinal);
    }

    /// <summary>The settings of a new instance: enabled, every event.</summary>
    public static InstanceSettings Default { get; } = new(true, []);

    public bool Enabled { get; }

    public IReadOnlyList<string> Events { get; }

    /// <summary>
    /// Whether subscribers scoped to this instance (namespace <c>/{name}</c>, plain WebSocket with an
    /// instance token or <c>?instance=</c>) receive an event with this setting name.
    /// </summary>
    public bool Allows(string settingName) => Enabled && (_events.Count == 0 || _events.Contains(settingName));
}

/// <summary>Instance name rules: 1–64 of letters, digits, <c>-</c>, <c>_</c>, <c>.</c>.</summary>
public static partial class InstanceNames
{
    public const string Rule = "must be 1-64 characters of letters, digits, '-', '_' or '.'";

    public static bool IsValid(string? name) => name is not null && Pattern().IsMatch(name);

    [GeneratedRegex(@"\A[A-Za-z0-9_.-]{1,64}\z", RegexOptions.CultureInvariant)] // \z: "$" would also match before a final newline
    private static partial Regex Pattern();
}

/// <summary>Outcome of <see cref="InstanceRegistry.CreateAsync"/>.</summary>
public enum CreateInstanceStatus
{
    Created,
    NameExists,
    TokenTaken,
}
