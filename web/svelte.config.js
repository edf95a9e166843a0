import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/** The UI is a static SPA served by the whipcast server on its one port. */
export default {
  preprocess: vitePreprocess(),
  kit: {
    adapter: adapter({ fallback: '200.html', precompress: true }),
    alias: { $shared: '../signaling' },
  },
};
