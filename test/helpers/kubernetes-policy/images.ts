// Images: every container runs a pinned version, and the API and its migration run the same one.
import { componentTemplates, podTemplates } from '../kustomize.js';
import { API_IMAGE, apiTemplates, each, imageProblem, type CheckSet } from './shared.js';

export const imageChecks = {
  imageTags: (objects) =>
    each(podTemplates(objects), (_t, c, where) => {
      const problem = imageProblem(c.image);
      return problem === undefined ? undefined : `${where}: ${problem}`;
    }),

  apiImage: (objects) => {
    const images = [...apiTemplates(objects), ...componentTemplates(objects, 'migrate')].flatMap((t) =>
      t.spec.containers.map((c) => ({ where: `${t.owner}/${c.name}`, image: c.image ?? '' })),
    );
    const out = images
      .filter(({ image }) => !image.startsWith(`${API_IMAGE}:`))
      .map(({ where, image }) => `${where}: image ${image} is not ${API_IMAGE}`);
    if (new Set(images.map((i) => i.image)).size > 1) {
      out.push(`the API and the migration run different images: ${images.map((i) => i.image).join(', ')}`);
    }
    return out;
  },
} satisfies CheckSet;
