namespace Evolution.Events.SocketIO.Tests;

/// <summary>
/// A broadcast to a whole namespace walks an array of its sockets, made once the membership has held still from one
/// broadcast to the next: a socket that joins after the array was made gets the next broadcast, and a socket that
/// left is in no array a later broadcast walks.
/// </summary>
public sealed class BroadcastMembershipTests
{
    [Fact]
    public async Task A_socket_that_joins_after_the_array_was_made_gets_the_next_broadcast()
    {
        await using var server = await TestServer.StartAsync();
        var nsp = server.Io.Of("/");
        await using var first = await ConnectAsync(server);
        await AttackTests.WaitUntilAsync(() => nsp.SocketCount == 1);
        for (var i = 0; i < 3; i++)
        {
            nsp.Emit("tick", i);
            Assert.Equal(i, (await first.NextEventAsync())[1]!.GetValue<int>());
        }

        Assert.Single(nsp.StableSockets()!.SelectMany(chunk => chunk)); // the array is kept now

        await using var second = await ConnectAsync(server);
        await AttackTests.WaitUntilAsync(() => nsp.SocketCount == 2);
        nsp.Emit("tick", 3);
        Assert.Equal(3, (await second.NextEventAsync())[1]!.GetValue<int>());
        Assert.Equal(3, (await first.NextEventAsync())[1]!.GetValue<int>());
    }

    [Fact]
    public async Task A_socket_that_left_is_not_in_the_array_of_a_later_broadcast()
    {
        await using var server = await TestServer.StartAsync();
        var nsp = server.Io.Of("/");
        await using var staying = await ConnectAsync(server);
        var leaving = await ConnectAsync(server);
        await AttackTests.WaitUntilAsync(() => nsp.SocketCount == 2);
        nsp.Emit("tick", 0);
        nsp.Emit("tick", 1);
        Assert.Equal(2, nsp.StableSockets()!.Sum(chunk => chunk.Length));

        await leaving.DisposeAsync();
        await AttackTests.WaitUntilAsync(() => nsp.SocketCount == 1);

        // the first broadcast after a change walks the dictionary; the next one makes a new array
        Assert.Null(nsp.StableSockets());
        var sockets = nsp.StableSockets();
        Assert.NotNull(sockets);
        Assert.Equal(nsp.SocketsById.Values.Single(), Assert.Single(sockets.SelectMany(chunk => chunk)));
    }

    private static async Task<WsSocketIOClient> ConnectAsync(TestServer server)
    {
        var client = await WsSocketIOClient.OpenAsync(server.BaseUri);
        Assert.True((await client.ConnectAsync("/")).Ok);
        return client;
    }
}
