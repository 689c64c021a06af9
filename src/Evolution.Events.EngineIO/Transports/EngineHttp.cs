using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Evolution.Events.EngineIO.Protocol;
using Microsoft.AspNetCore.Http;

namespace Evolution.Events.EngineIO;

/// <summary>The HTTP side of the Engine.IO handler: error bodies, payloads, bounded body reading.</summary>
internal static class EngineHttp
{
    private static readonly byte[] Ok = "ok"u8.ToArray();

    internal enum BodyStatus
    {
        Ok,
        TooLarge,
        Aborted,
    }

    internal readonly record struct Body(BodyStatus Status, string? Text, byte[]? Bytes = null);

    public static Task WriteErrorAsync(HttpContext context, EngineErrorCode code, string? message = null)
    {
        var status = code == EngineErrorCode.Forbidden ? StatusCodes.Status403Forbidden : StatusCodes.Status400BadRequest;
        return WriteErrorAsync(context, status, (int)code, message ?? EngineErrors.Message(code));
    }

    public static async Task WriteErrorAsync(HttpContext context, int status, int code, string message)
    {
        if (context.Response.HasStarted)
        {
            return;
        }

        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        var json = $"{{\"code\":{code},\"message\":{System.Text.Json.JsonSerializer.Serialize(message)}}}";
        await context.Response.WriteAsync(json, context.RequestAborted).ConfigureAwait(false);
    }

    public static async Task WritePayloadAsync(HttpContext context, ReadOnlyMemory<byte> payload, bool binary = false, string? contentType = null)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = contentType ?? (binary ? "application/octet-stream" : "text/plain; charset=UTF-8");
        context.Response.Headers.CacheControl = "no-store";
        context.Response.ContentLength = payload.Length;
        try
        {
            await context.Response.Body.WriteAsync(payload, context.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            // the client went away; the session notices at its next poll or by the heartbeat
        }
    }

    public static Task WriteOkAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "text/html";
        context.Response.Headers.CacheControl = "no-store";
        context.Response.ContentLength = Ok.Length;
        return context.Response.Body.WriteAsync(Ok, context.RequestAborted).AsTask();
    }

    public static Task WriteStatusAsync(HttpContext context, int status)
    {
        if (!context.Response.HasStarted)
        {
            context.Response.StatusCode = status;
        }

        return Task.CompletedTask;
    }

    /// <summary>Reads a POST body of at most <paramref name="maxPayload"/> bytes, as UTF-8 text or (<paramref name="binary"/>) as bytes.</summary>
    public static async Task<Body> ReadBodyAsync(HttpContext context, int maxPayload, bool binary = false)
    {
        if (context.Request.ContentLength > maxPayload)
        {
            return new Body(BodyStatus.TooLarge, null);
        }

        var reader = context.Request.BodyReader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(context.RequestAborted).ConfigureAwait(false);
                if (result.Buffer.Length > maxPayload)
                {
                    reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                    return new Body(BodyStatus.TooLarge, null);
                }

                if (result.IsCompleted && binary)
                {
                    var bytes = result.Buffer.ToArray();
                    reader.AdvanceTo(result.Buffer.End);
                    return new Body(BodyStatus.Ok, null, bytes);
                }

                if (result.IsCompleted)
                {
                    var text = DecodeUtf8(result.Buffer);
                    reader.AdvanceTo(result.Buffer.End);
                    return new Body(BodyStatus.Ok, text);
                }

                reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or BadHttpRequestException)
        {
            return new Body(BodyStatus.Aborted, null);
        }
    }

    private static string DecodeUtf8(in ReadOnlySequence<byte> buffer) =>
        buffer.IsSingleSegment ? Encoding.UTF8.GetString(buffer.FirstSpan) : Encoding.UTF8.GetString(buffer.ToArray());
}
