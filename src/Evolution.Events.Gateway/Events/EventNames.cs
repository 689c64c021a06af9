using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;

namespace Evolution.Events.Gateway.Events;

/// <summary>One catalogued event: the settings name (CONSTANT_CASE) and the emitted name (dotted).</summary>
public sealed record EventName(string Setting, string Dotted)
{
    /// <summary>The kebab form of the setting name (the suffix WEBHOOK_BY_EVENTS appends).</summary>
    public string Kebab => Setting.ToLowerInvariant().Replace('_', '-');

    public override string ToString() => Dotted;
}

/// <summary>The contract's event catalog (Evolution API v2 names plus the seeds).</summary>
public static class EventNames
{
    public static readonly IReadOnlyList<EventName> All =
    [
        new("APPLICATION_STARTUP", "application.startup"),
        new("INSTANCE_CREATE", "instance.create"),
        new("INSTANCE_DELETE", "instance.delete"),
        new("QRCODE_UPDATED", "qrcode.updated"),
        new("CONNECTION_UPDATE", "connection.update"),
        new("STATUS_INSTANCE", "status.instance"),
        new("MESSAGES_SET", "messages.set"),
        new("MESSAGES_UPSERT", "messages.upsert"),
        new("MESSAGES_EDITED", "messages.edited"),
        new("MESSAGES_UPDATE", "messages.update"),
        new("MESSAGES_DELETE", "messages.delete"),
        new("SEND_MESSAGE", "send.message"),
        new("SEND_MESSAGE_UPDATE", "send.message.update"),
        new("CONTACTS_SET", "contacts.set"),
        new("CONTACTS_UPSERT", "contacts.upsert"),
        new("CONTACTS_UPDATE", "contacts.update"),
        new("PRESENCE_UPDATE", "presence.update"),
        new("CHATS_SET", "chats.set"),
        new("CHATS_UPSERT", "chats.upsert"),
        new("CHATS_UPDATE", "chats.update"),
        new("CHATS_DELETE", "chats.delete"),
        new("GROUPS_UPSERT", "groups.upsert"),
        new("GROUPS_UPDATE", "groups.update"),
        new("GROUP_PARTICIPANTS_UPDATE", "group-participants.update"),
        new("CALL", "call"),
        new("CALL_UPSERT", "call.upsert"),
        new("TYPEBOT_START", "typebot.start"),
        new("TYPEBOT_CHANGE_STATUS", "typebot.change-status"),
        new("LABELS_EDIT", "labels.edit"),
        new("LABELS_ASSOCIATION", "labels.association"),
        new("REMOVE_INSTANCE", "remove.instance"),
        new("LOGOUT_INSTANCE", "logout.instance"),
        new("NEW_JWT", "new.jwt"),
        new("MESSAGING_HISTORY_SET", "messaging-history.set"),
    ];

    private static readonly FrozenDictionary<string, EventName> Lookup = BuildLookup();

    /// <summary>Parses a setting name, dotted name or kebab form (or the alias GROUP_UPDATE), ignoring case.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out EventName? eventName)
    {
        eventName = null;
        return !string.IsNullOrWhiteSpace(text) && Lookup.TryGetValue(text.Trim(), out eventName);
    }

    /// <summary>Parses or returns null.</summary>
    public static EventName? Find(string? text) => TryParse(text, out var e) ? e : null;

    private static FrozenDictionary<string, EventName> BuildLookup()
    {
        var map = new Dictionary<string, EventName>(StringComparer.OrdinalIgnoreCase);
        foreach (var e in All)
        {
            map[e.Setting] = e;
            map[e.Dotted] = e;
            map[e.Kebab] = e;
        }
        var groupsUpdate = map["GROUPS_UPDATE"];
        map["GROUP_UPDATE"] = groupsUpdate;
        map["group-update"] = groupsUpdate;
        map["group.update"] = groupsUpdate;
        return map.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
    }
}
