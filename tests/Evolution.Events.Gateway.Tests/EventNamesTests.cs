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

    [Fact]
    public void CatalogHasTheContractsPairsAndEveryFormRoundTrips()
    {
        Assert.Equal(34, EventNames.All.Count);
        foreach (var e in EventNames.All)
        {
            Assert.Same(e, EventNames.Find(e.Setting));
            Assert.Same(e, EventNames.Find(e.Dotted));
            Assert.Same(e, EventNames.Find(e.Kebab));
        }
    }
}
