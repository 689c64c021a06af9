using System.Text.Json;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Http;
using Evolution.Events.Gateway.Instances;
using FluentValidation;

namespace Evolution.Events.Gateway.Ingestion;

/// <summary>One ingestion request: the parsed body (an object or an array) and the URL's event, if any.</summary>
public sealed class WebhookBatch(JsonElement root, EventName? urlEvent)
{
    public JsonElement Root { get; } = root;

    public EventName? UrlEvent { get; } = urlEvent;

    /// <summary>The items of the body: the array's elements, or the single object.</summary>
    public IEnumerable<JsonElement> Items =>
        Root.ValueKind == JsonValueKind.Array ? Root.EnumerateArray() : [Root];

    /// <summary>The items of a validated batch: event (body wins over URL), instance, raw item.</summary>
    public IReadOnlyList<(EventName Event, string Instance, JsonElement Item)> Parse() =>
        [.. Items.Select(item => (EventOf(item, UrlEvent)!, item.GetProperty("instance").GetString()!, item))];

    internal static EventName? EventOf(JsonElement item, EventName? urlEvent) =>
        item.TryGetProperty("event", out var e) && e.ValueKind == JsonValueKind.String
            ? EventNames.Find(e.GetString())
            : urlEvent;
}

/// <summary>
/// Validates a whole ingestion batch; every message names its item. Only the first
/// <see cref="ApiError.MaxMessages"/> failures are listed (then <c>"… and N more"</c>), and an item's path
/// (<c>items[3]</c>) is only formatted for a listed failure: a body of a million bad items costs twenty messages.
/// </summary>
public sealed class WebhookBatchValidator : AbstractValidator<WebhookBatch>
{
    public WebhookBatchValidator()
    {
        RuleFor(x => x).Custom((batch, ctx) =>
        {
            if (batch.Root.ValueKind == JsonValueKind.Array && batch.Root.GetArrayLength() == 0)
            {
                ctx.AddFailure("body", "empty array: send at least one event");
                return;
            }
            if (batch.Root.ValueKind is not (JsonValueKind.Array or JsonValueKind.Object))
            {
                ctx.AddFailure("body", "must be an event object or an array of them");
                return;
            }
            var failures = new CappedFailures<WebhookBatch>(ctx);
            var index = 0;
            foreach (var item in batch.Items)
                ValidateItem(item, index++, batch.UrlEvent, failures);
            failures.Complete();
        });
    }

    private static void ValidateItem(JsonElement item, int index, EventName? urlEvent, CappedFailures<WebhookBatch> failures)
    {
        if (item.ValueKind != JsonValueKind.Object)
        {
            AddFailure(failures, index, "", "must be an event object");
            return;
        }
        if (item.TryGetProperty("event", out var e) && e.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined))
        {
            if (e.ValueKind != JsonValueKind.String)
                AddFailure(failures, index, ".event", "must be a string");
            else if (!EventNames.TryParse(e.GetString(), out _) && failures.Next())
                failures.Listed(Path(index, ".event"), $"unknown event name '{Truncate(e.GetString()!)}'");
        }
        else if (urlEvent is null)
        {
            AddFailure(failures, index, ".event", "missing: put it in the body or the URL (/webhook/{event})");
        }
        if (!item.TryGetProperty("instance", out var instance) || instance.ValueKind != JsonValueKind.String)
            AddFailure(failures, index, ".instance", "required string");
        else if (!InstanceNames.IsValid(instance.GetString()))
            AddFailure(failures, index, ".instance", InstanceNames.Rule);
    }

    private static void AddFailure(CappedFailures<WebhookBatch> failures, int index, string field, string message)
    {
        if (failures.Next())
            failures.Listed(Path(index, field), message);
    }

    private static string Path(int index, string field = "") => $"items[{index}]{field}";

    private static string Truncate(string text) => text.Length <= 64 ? text : text[..64] + "…";
}
