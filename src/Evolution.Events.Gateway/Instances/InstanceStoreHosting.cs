using Evolution.Events.Gateway.Http;
using Evolution.Events.Gateway.Options;

namespace Evolution.Events.Gateway.Instances;

/// <summary>Picks the instance store (Redis with REDIS_URI, SQLite otherwise) and maps its outages to 503.</summary>
public static class InstanceStoreHosting
{
    /// <summary>Registers <see cref="IInstanceStore"/>: <see cref="RedisInstanceStore"/> when REDIS_URI is set, else <see cref="SqliteInstanceStore"/>.</summary>
    public static IServiceCollection AddInstanceStore(this IServiceCollection services, GatewayOptions options)
    {
        if (options.Redis is null)
            services.AddSingleton<IInstanceStore, SqliteInstanceStore>();
        else
            services.AddSingleton<IInstanceStore, RedisInstanceStore>();
        return services;
    }

    /// <summary>
    /// A write that finds the store unreachable (<see cref="InstanceStoreUnavailableException"/>) answers
    /// <c>503</c> with the usual error body; reads are served from memory and never get here.
    /// </summary>
    public static WebApplication UseInstanceStoreErrors(this WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            try
            {
                await next(context);
            }
            catch (InstanceStoreUnavailableException ex) when (!context.Response.HasStarted)
            {
                context.Response.Headers.RetryAfter = "1";
                await ApiError.WriteAsync(context.Response, StatusCodes.Status503ServiceUnavailable, ex.Message);
            }
        });
        return app;
    }
}
