/**
 * Fixed Lua scripts of the engine as ioredis commands: `defineCommand` runs them by EVALSHA
 * (loading the script once when Redis does not know it yet). The script text is always a constant
 * of our code, never user input.
 */
import type { Redis } from 'ioredis';

/**
 * The command `name` running `lua` on `client` (defined once per client), bound to it.
 * @param numberOfKeys how many leading arguments are keys; omitted: the first argument is the key count
 */
export function luaCommand<F extends (...args: never[]) => Promise<unknown>>(
  client: Redis,
  name: string,
  lua: string,
  numberOfKeys?: number,
): F {
  if (!(name in client)) client.defineCommand(name, numberOfKeys === undefined ? { lua } : { lua, numberOfKeys });
  const cmd = (client as unknown as Record<string, F>)[name];
  return cmd.bind(client) as F;
}
