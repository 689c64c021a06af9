using Evolution.Events.Gateway;
using Evolution.Events.Gateway.Demo;
using Evolution.Events.Gateway.Observability;
using Evolution.Events.Gateway.Options;

// Composition lives in GatewayApp; this file only picks the verb (serve, `demo`, `healthcheck`) and turns
// start-up failures into one line and an exit code.
if (HealthProbe.IsRequested(args))
    return await HealthProbe.RunAsync();
// With SERVER_INLINE_IO (default on), socket completions also run inline on the I/O threads. The runtime
// reads this switch once, at its first socket, so it is set here, before anything opens one.
if (!string.Equals(Environment.GetEnvironmentVariable(GatewayOptionsBinder.InlineIoVariable), "false", StringComparison.OrdinalIgnoreCase)
    && Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
    Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
try
{
    var demo = DemoProducer.IsRequested(args, out var rest);
    var app = GatewayApp.Build(rest);
    if (demo)
        DemoProducer.Attach(app);
    await app.RunAsync();
    return 0;
}
catch (GatewayConfigurationException ex)
{
    await Console.Error.WriteLineAsync(ex.Message);
    return 2;
}
catch (IOException ex)
{
    // e.g. the port is already in use
    await Console.Error.WriteLineAsync($"Start-up failed: {ex.Message}");
    return 1;
}
