import type { z } from 'zod';

/** Any zod object schema, strict, loose or stripping, with any shape. */
export type ObjectSchema = z.ZodObject<z.core.$ZodShape, z.core.$ZodObjectConfig>;

/**
 * Paths of the object schemas in `schema` that strip unknown keys (a plain `z.object`): a request with a misspelt field would then succeed and silently lose the field.
 * Looks through wrappers, arrays, unions, intersections, records, tuples and pipes; not through
 * `z.lazy` or custom types.
 */
export function findStrippingObjects(schema: z.core.$ZodType | undefined, root: string): string[] {
  const found: string[] = [];
  if (schema !== undefined) walk(schema, root, found, new Set());
  return found;
}

function walk(
  schema: z.core.$ZodType,
  path: string,
  found: string[],
  seen: Set<z.core.$ZodType>,
): void {
  // Recursive schemas (getters) lead back to a schema already on the way: look at each once.
  if (seen.has(schema)) return;
  seen.add(schema);
  const def = (schema as z.core.$ZodTypes)._zod.def;
  switch (def.type) {
    case 'object':
      if (def.catchall === undefined) found.push(path);
      for (const [key, child] of Object.entries(def.shape))
        walk(child, `${path}.${key}`, found, seen);
      if (def.catchall !== undefined) walk(def.catchall, `${path}.*`, found, seen);
      return;
    case 'array':
      walk(def.element, `${path}[]`, found, seen);
      return;
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'nonoptional':
    case 'readonly':
    case 'catch':
      walk(def.innerType, path, found, seen);
      return;
    case 'union':
      for (const option of def.options) walk(option, path, found, seen);
      return;
    case 'intersection':
      walk(def.left, path, found, seen);
      walk(def.right, path, found, seen);
      return;
    case 'record':
      walk(def.valueType, `${path}.*`, found, seen);
      return;
    case 'tuple':
      def.items.forEach((item, index) => walk(item, `${path}[${index}]`, found, seen));
      if (def.rest !== null) walk(def.rest, `${path}[]`, found, seen);
      return;
    case 'pipe':
      walk(def.in, path, found, seen);
      walk(def.out, path, found, seen);
      return;
    default:
      return;
  }
}
