using FluentValidation;
using FluentValidation.Results;

namespace Evolution.Events.Gateway.Http;

/// <summary>
/// Collects a validator's failures up to <see cref="ApiError.MaxMessages"/> and only counts the rest, so
/// that validating a body of a million bad items allocates twenty messages, not a million. Callers build a
/// message only when <see cref="Next"/> says it will be listed; <see cref="Complete"/> adds the
/// <c>"… and N more"</c> line.
/// </summary>
public sealed class CappedFailures<T>(ValidationContext<T> context)
{
    /// <summary>Failures seen so far, listed or not.</summary>
    public long Count { get; private set; }

    /// <summary>Counts one failure; true when it is among the listed ones (then add it with <see cref="Listed"/>).</summary>
    public bool Next() => Count++ < ApiError.MaxMessages;

    /// <summary>Adds a failure that <see cref="Next"/> said is listed.</summary>
    public void Listed(string property, string message) => context.AddFailure(property, message);

    /// <summary>Counts a failure and lists it while under the cap.</summary>
    public void Add(string property, string message)
    {
        if (Next())
            Listed(property, message);
    }

    /// <summary>Adds the closing <c>"… and N more"</c> when failures were left out.</summary>
    public void Complete()
    {
        if (Count > ApiError.MaxMessages)
            context.AddFailure(new ValidationFailure("", ApiError.MoreMessage(Count - ApiError.MaxMessages)));
    }
}

/// <summary>Formats validation failures as the messages of <see cref="ApiError"/>: <c>"field: message"</c>.</summary>
public static class ValidationMessages
{
    public static IEnumerable<string> Of(ValidationResult result) =>
        result.Errors.Select(e => e.PropertyName.Length == 0 ? e.ErrorMessage : $"{e.PropertyName}: {e.ErrorMessage}");
}
