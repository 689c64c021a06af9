using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;

namespace Evolution.Events.EngineIO.Hosting;

/// <summary>
/// The response side of one raw-path request: headers and a buffered body serialised as HTTP/1.1 when the pipeline
/// answers (then the connection closes), or the <c>101</c> written to the connection's output when it upgrades.
/// </summary>
internal sealed class RawExchange : IHttpResponseFeature, IHttpUpgradeFeature, IHttpRequestLifetimeFeature, IConnectionDetachFeature
{
    private const int MaxBufferedBody = 1024 * 1024;
    private readonly ConnectionContext _connection;
    private readonly MemoryStream _body = new();
    private List<(Func<object, Task> Callback, object State)>? _onStarting;
    private List<(Func<object, Task> Callback, object State)>? _onCompleted;
    private readonly Action _onUpgrade;
    private Func<Task>? _detached;

    public RawExchange(ConnectionContext connection, Action onUpgrade)
    {
        _connection = connection;
        _onUpgrade = onUpgrade;
        BodyFeature = new StreamResponseBodyFeature(new BoundedStream(_body, MaxBufferedBody));
        AbortConnection = connection.Abort;
        RequestAborted = connection.ConnectionClosed;
    }

    public StreamResponseBodyFeature BodyFeature { get; }

    public bool Upgraded { get; private set; }

    public int StatusCode { get; set; } = StatusCodes.Status200OK;

    public string? ReasonPhrase { get; set; }

    public IHeaderDictionary Headers { get; set; } = new HeaderDictionary();

    [Obsolete("Use IHttpResponseBodyFeature")]
    public Stream Body
    {
        get => BodyFeature.Stream;
        set => throw new NotSupportedException();
    }

    public bool HasStarted { get; private set; }

    public bool IsUpgradableRequest => true;

    public CancellationToken RequestAborted { get; set; }

    public CancellationToken ConnectionClosed => _connection.ConnectionClosed;

    public Action AbortConnection { get; }

    public void Abort() => _connection.Abort();

    public void OnStarting(Func<object, Task> callback, object state) => (_onStarting ??= []).Add((callback, state));

    public void OnCompleted(Func<object, Task> callback, object state) => (_onCompleted ??= []).Add((callback, state));

    public void Detach(Func<Task> run)
    {
        if (!Upgraded || _detached is not null)
        {
            throw new InvalidOperationException("Detach is for an upgraded connection, once.");
        }

        _detached = run;
    }

    public Func<Task>? TakeDetached()
    {
        var run = _detached;
        _detached = null;
        return run;
    }

    public async Task<Stream> UpgradeAsync()
    {
        if (Upgraded || HasStarted)
        {
            throw new InvalidOperationException("The response has started.");
        }

        Upgraded = true;
        StatusCode = StatusCodes.Status101SwitchingProtocols;
        await StartAsync();
        var output = _connection.Transport.Output;
        WriteHead(output, bodyLength: null);
        _onUpgrade(); // counted before the client can see its 101
        await output.FlushAsync();
        return new DuplexPipeStream(_connection.Transport);
    }

    public void ResetForError()
    {
        StatusCode = StatusCodes.Status500InternalServerError;
        ReasonPhrase = null;
        Headers.Clear();
        _body.SetLength(0);
    }

    /// <summary>Writes the answer (the connection closes after it).</summary>
    public async Task WriteResponseAsync()
    {
        await BodyFeature.CompleteAsync(); // flushes what was written through BodyWriter
        await StartAsync();
        var output = _connection.Transport.Output;
        var bodiless = StatusCode is 204 or 304 or < 200;
        WriteHead(output, bodiless ? null : _body.Length);
        if (!bodiless && _body.Length > 0)
        {
            output.Write(_body.GetBuffer().AsSpan(0, (int)_body.Length));
        }

        await output.FlushAsync();
    }

    public async Task CompleteAsync()
    {
        if (_onCompleted is null)
        {
            return;
        }

        for (var i = _onCompleted.Count - 1; i >= 0; i--)
        {
            try
            {
                await _onCompleted[i].Callback(_onCompleted[i].State);
            }
            catch (Exception)
            {
                // as Kestrel: a failing OnCompleted callback does not affect the connection
            }
        }

        _onCompleted = null;
    }

    private async Task StartAsync()
    {
        if (_onStarting is not null)
        {
            for (var i = _onStarting.Count - 1; i >= 0; i--)
            {
                await _onStarting[i].Callback(_onStarting[i].State);
            }

            _onStarting = null;
        }

        HasStarted = true;
    }

    /// <summary>
    /// The status line and headers, written straight into the connection's output (no string of the whole head).
    /// Header values are ASCII here (what Kestrel would send, otherwise it rejects them): Latin-1 keeps any char as one byte.
    /// </summary>
    private void WriteHead(PipeWriter output, long? bodyLength)
    {
        Write(output, "HTTP/1.1 ");
        WriteNumber(output, StatusCode);
        Write(output, " ");
        Write(output, ReasonPhrase ?? ReasonPhrases.GetReasonPhrase(StatusCode));
        Write(output, "\r\n");
        foreach (var (name, values) in Headers)
        {
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)
                || name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase)
                || (!Upgraded && name.Equals("Connection", StringComparison.OrdinalIgnoreCase)))
            {
                continue;
            }

            foreach (var value in values)
            {
                Write(output, name);
                Write(output, ": ");
                Write(output, value);
                Write(output, "\r\n");
            }
        }

        Span<char> date = stackalloc char[32];
        DateTimeOffset.UtcNow.TryFormat(date, out var dateLength, "r", CultureInfo.InvariantCulture);
        Write(output, "Date: ");
        Write(output, date[..dateLength]);
        Write(output, "\r\n");
        if (!Upgraded)
        {
            Write(output, "Connection: close\r\n");
            if (bodyLength is { } length)
            {
                Write(output, "Content-Length: ");
                WriteNumber(output, length);
                Write(output, "\r\n");
            }
        }

        Write(output, "\r\n");
    }

    private static void Write(PipeWriter output, ReadOnlySpan<char> text) => Encoding.Latin1.GetBytes(text, output);

    private static void WriteNumber(PipeWriter output, long value)
    {
        var span = output.GetSpan(20);
        value.TryFormat(span, out var written, default, CultureInfo.InvariantCulture);
        output.Advance(written);
    }

    /// <summary>A response body bounded in memory: a refusal's JSON fits many times over.</summary>
    private sealed class BoundedStream(MemoryStream inner, int max) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => inner.Length;

        public override long Position
        {
            get => inner.Position;
            set => throw new NotSupportedException();
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (inner.Length + buffer.Length > max)
            {
                throw new InvalidOperationException($"A raw-path response body is limited to {max} bytes.");
            }

            inner.Write(buffer);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Write(buffer.AsSpan(offset, count));
            return Task.CompletedTask;
        }
    }
}

/// <summary>The upgraded connection as a stream: reads from and writes to the transport's pipes, nothing in between.</summary>
internal sealed class DuplexPipeStream(IDuplexPipe pipe) : Stream
{
    /// <summary>The connection's input, for an idle wait that needs no state machine of its own.</summary>
    internal PipeReader Input => pipe.Input;

    /// <summary>The connection's output, for a frame writer that writes into it without this stream's layer.</summary>
    internal PipeWriter Output => pipe.Output;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var result = await pipe.Input.ReadAsync(cancellationToken);
            if (result.IsCanceled)
            {
                throw new OperationCanceledException();
            }

            var buffer = result.Buffer;
            if (buffer.IsEmpty)
            {
                pipe.Input.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    return 0;
                }

                continue;
            }

            var n = (int)Math.Min(buffer.Length, destination.Length);
            buffer.Slice(0, n).CopyTo(destination.Span);
            pipe.Input.AdvanceTo(buffer.GetPosition(n));
            return n;
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        ThrowIfEnded(await pipe.Output.WriteAsync(source, cancellationToken));
    }

    /// <summary>What a write's flush of the connection's output says, as a stream says it: cancelled, or the connection closed.</summary>
    internal static void ThrowIfEnded(FlushResult result)
    {
        if (result.IsCanceled)
        {
            throw new OperationCanceledException();
        }

        if (result.IsCompleted)
        {
            throw new IOException("The connection is closed.");
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async Task FlushAsync(CancellationToken cancellationToken) => await pipe.Output.FlushAsync(cancellationToken);

    public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
