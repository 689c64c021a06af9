using System.Text.Json;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Http;
using Evolution.Events.Gateway.Instances;
using FluentValidation;

namespace Evolution.Events.Gateway.Settings;

/// <summary>Body of <c>POST /websocket/set/{instanceName}</c>: <c>{ "websocket": { "enabled", "events" } }</c>.</summary>
public sealed class WebSocketSettingsRequest
{
    public JsonElement Websocket { get; set; }

    /// <summary>The settings this (validated) request asks for, names in CONSTANT_CASE.</summary>
    public InstanceSettings ToSettings()
    {
        var enabled = Websocket.GetProperty("enabled").GetBoolean();
        var events = new List<string>();
        if (Websocket.TryGetProperty("events", out var list) && list.ValueKind == JsonValueKind.Array)
            events.AddRange(list.EnumerateArray().Select(e => EventNames.Find(e.GetString())!.Setting));
        return new InstanceSettings(enabled, events);
    }
}

public sealed class WebSocketSettingsRequestValidator : AbstractValidator<WebSocketSettingsRequest>
{
    public WebSocketSettingsRequestValidator()
    {
        RuleFor(x => x.Websocket).Custom((ws, ctx) =>
        {
            if (ws.ValueKind != JsonValueKind.Object)
            {
                ctx.AddFailure("websocket", "required object { enabled, events }");
                return;
            }
            if (!ws.TryGetProperty("enabled", out var enabled))
                ctx.AddFailure("websocket.enabled", "required boolean");
            else if (enabled.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                ctx.AddFailure("websocket.enabled", $"must be a boolean (got {Describe(enabled)})");
            if (ws.TryGetProperty("events", out var events))
                ValidateEvents(events, ctx);
        });
    }

    private static void ValidateEvents(JsonElement events, ValidationContext<WebSocketSettingsRequest> ctx)
    {
        if (events.ValueKind == JsonValueKind.Null)
            return;
        if (events.ValueKind != JsonValueKind.Array)
        {
            ctx.AddFailure("websocket.events", $"must be an array of event names (got {Describe(events)})");
            return;
        }
        var failures = new CappedFailures<WebSocketSettingsRequest>(ctx);
        var index = 0;
        foreach (var item in events.EnumerateArray())
        {
            var i = index++;
            if (item.ValueKind != JsonValueKind.String)
            {
                if (failures.Next())
                    failures.Listed($"websocket.events[{i}]", $"must be a string (got {Describe(item)})");
            }
            else if (!EventNames.TryParse(item.GetString(), out _) && failures.Next())
            {
                failures.Listed($"websocket.events[{i}]", $"unknown event name '{Truncate(item.GetString()!)}'");
            }
        }
        failures.Complete();
    }

    internal static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Number => "a number",
        JsonValueKind.String => "a string",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };

    internal static string Truncate(string text) => text.Length <= 64 ? text : text[..64] + "…";
}
