using System.Text.RegularExpressions;
using Evolution.Events.Gateway.Events;

namespace Evolution.Events.Gateway.Tests;

public class EventNamesTests
{
    [Theory]
    [InlineData("MESSAGES_UPSERT")]
    [InlineData("messages.upsert")]
    [InlineData("messages-upsert")]
    [InlineData("Messages.Upsert")]
    [InlineData("messages_upsert")]
    public void ParsesEveryFormIgnoringCase(string text)
    {
        Assert.True(EventNames.TryParse(text, out var e));
        Assert.Equal("MESSAGES_UPSERT", e.Setting);
        Assert.Equal("messages.upsert", e.Dotted);
    }

    [Theory]
    [InlineData("GROUP_UPDATE", "groups.update")]
    [InlineData("group-participants-update", "group-participants.update")]
    [InlineData("typebot-change-status", "typebot.change-status")]
    [InlineData("messaging-history.set", "messaging-history.set")]
    [InlineData("MESSAGING_HISTORY_SET", "messaging-history.set")]
    [InlineData("send-message-update", "send.message.update")]
    [InlineData("call", "call")]
    public void ParsesAliasesAndKebab(string text, string dotted) =>
        Assert.Equal(dotted, EventNames.Find(text)?.Dotted);

    [Theory]
    [InlineData("FOO")]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("messages")]
    public void RejectsUnknown(string? text) => Assert.False(EventNames.TryParse(text, out _));

    /// <summary>
    /// Evolution API v2's event names as its webhook sender emits them (CONSTANT_CASE setting, dotted event), typed
    /// here by hand from the contract, not derived from <see cref="EventNames"/>: a renamed, dropped or
    /// mistyped entry in the catalog fails this test.
    /// </summary>
    private static readonly (string Setting, string Dotted)[] EvolutionApi =
    [
        ("APPLICATION_STARTUP", "application.startup"), ("INSTANCE_CREATE", "instance.create"),
        ("INSTANCE_DELETE", "instance.delete"), ("QRCODE_UPDATED", "qrcode.updated"),
        ("CONNECTION_UPDATE", "connection.update"), ("STATUS_INSTANCE", "status.instance"),
        ("MESSAGES_SET", "messages.set"), ("MESSAGES_UPSERT", "messages.upsert"),
        ("MESSAGES_EDITED", "messages.edited"), ("MESSAGES_UPDATE", "messages.update"),
        ("MESSAGES_DELETE", "messages.delete"), ("SEND_MESSAGE", "send.message"),
        ("SEND_MESSAGE_UPDATE", "send.message.update"), ("CONTACTS_SET", "contacts.set"),
        ("CONTACTS_UPSERT", "contacts.upsert"), ("CONTACTS_UPDATE", "contacts.update"),
        ("PRESENCE_UPDATE", "presence.update"), ("CHATS_SET", "chats.set"),
        ("CHATS_UPSERT", "chats.upsert"), ("CHATS_UPDATE", "chats.update"),
        ("CHATS_DELETE", "chats.delete"), ("GROUPS_UPSERT", "groups.upsert"),
        ("GROUPS_UPDATE", "groups.update"), ("GROUP_PARTICIPANTS_UPDATE", "group-participants.update"),
        ("CALL", "call"), ("CALL_UPSERT", "call.upsert"),
        ("TYPEBOT_START", "typebot.start"), ("TYPEBOT_CHANGE_STATUS", "typebot.change-status"),
        ("LABELS_EDIT", "labels.edit"), ("LABELS_ASSOCIATION", "labels.association"),
        ("REMOVE_INSTANCE", "remove.instance"), ("LOGOUT_INSTANCE", "logout.instance"),
        ("NEW_JWT", "new.jwt"), ("MESSAGING_HISTORY_SET", "messaging-history.set"),
    ];

    public static TheoryData<string, string> EvolutionApiNames()
    {
        var data = new TheoryData<string, string>();
        foreach (var (setting, dotted) in EvolutionApi)
            data.Add(setting, dotted);
        return data;
    }

    [Theory]
    [MemberData(nameof(EvolutionApiNames))]
    public void EveryEvolutionApiNameParsesInEveryFormToItsPair(string setting, string dotted)
    {
        var kebab = setting.ToLowerInvariant().Replace('_', '-');
        foreach (var form in new[] { setting, dotted, kebab, setting.ToLowerInvariant(), dotted.ToUpperInvariant(), $"  {dotted} " })
        {
            var e = EventNames.Find(form);
            Assert.True(e is not null, $"'{form}' is not parsed");
            Assert.Equal(setting, e.Setting);
            Assert.Equal(dotted, e.Dotted);
            Assert.Equal(kebab, e.Kebab);
        }
    }

    [Fact]
    public void TheCatalogIsExactlyEvolutionApisNames()
    {
        Assert.Equal(EvolutionApi.Length, EvolutionApi.Distinct().Count());
        Assert.Equal(
            EvolutionApi.Select(p => $"{p.Setting} {p.Dotted}").Order(StringComparer.Ordinal),
            EventNames.All.Select(e => $"{e.Setting} {e.Dotted}").Order(StringComparer.Ordinal));
    }

    [Fact]
    public void TheCatalogIsTheTableInDocsApiMd()
    {
        // the "### Events" table of docs/api.md: | `SETTING` | `dotted` | `SETTING` | `dotted` |, aliases in parentheses
        var doc = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "api.md"));
        var start = doc.IndexOf("\n### Events\n", StringComparison.Ordinal);
        Assert.True(start >= 0, "docs/api.md has no '### Events' section");
        var end = doc.IndexOf("\n#", start + 1, StringComparison.Ordinal);
        var section = doc[start..(end < 0 ? doc.Length : end)];
        var cell = new Regex(@"`(?<setting>[A-Z_]+)`(?: \(alias `(?<alias>[A-Z_]+)`\))? \| `(?<dotted>[a-z.\-]+)`");
        var documented = new List<(string Setting, string Dotted)>();
        var aliases = new List<(string Alias, string Dotted)>();
        foreach (Match m in cell.Matches(section))
        {
            documented.Add((m.Groups["setting"].Value, m.Groups["dotted"].Value));
            if (m.Groups["alias"].Success)
                aliases.Add((m.Groups["alias"].Value, m.Groups["dotted"].Value));
        }

        Assert.Contains("The 34 events", section, StringComparison.Ordinal);
        Assert.Equal(34, documented.Count);
        Assert.Equal(
            documented.Select(p => $"{p.Setting} {p.Dotted}").Order(StringComparer.Ordinal),
            EventNames.All.Select(e => $"{e.Setting} {e.Dotted}").Order(StringComparer.Ordinal));
        Assert.Equal([("GROUP_UPDATE", "groups.update")], aliases);
        foreach (var (alias, dotted) in aliases)
            Assert.Equal(dotted, EventNames.Find(alias)?.Dotted);
    }

    [Fact]
    public void EveryFormOfEveryEntryRoundTrips()
    {
        foreach (var e in EventNames.All)
        {
            Assert.Same(e, EventNames.Find(e.Setting));
            Assert.Same(e, EventNames.Find(e.Dotted));
            Assert.Same(e, EventNames.Find(e.Kebab));
        }
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Evolution.Events.sln")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException($"Evolution.Events.sln not found above {AppContext.BaseDirectory}");
    }
}
